# blankslate diff --suggest: what the next boot would erase, as configuration for the
# host (hosts/<name>/default.nix). Keep the lines you want; what you drop stays lost.
{
  blankslate.persistence.directories = [
    # app.service: CacheDirectory (DynamicUser: systemd sets its owner at every start)
    { directory = "/var/lib/private/app"; user = "root"; group = "root"; mode = "0755"; }
    # web.service: StateDirectory
    { directory = "/var/lib/web-uploads"; user = "web"; group = "4242"; mode = "0750"; }
    # in /a
    { directory = "/a"; user = "root"; group = "web"; mode = "0700"; }
    # in /etc
    { directory = "/etc/cache0"; user = "4242"; group = "root"; mode = "1777"; }
    { directory = "/etc/café1"; user = "root"; group = "alice"; mode = "0700"; }
    { directory = "/etc/f\nnl3"; user = "4242"; group = "alice"; mode = "1777"; }
    # in /home
    { directory = "/home/bob"; user = "web"; group = "web"; mode = "0750"; }
    # in /srv
    { directory = "/srv"; user = "root"; group = "root"; mode = "0700"; }
    # in /var
    { directory = "/var/a-b1"; user = "4242"; group = "root"; mode = "1777"; }
    { directory = "/var/a.b3"; user = "alice"; group = "4242"; mode = "0755"; }
    { directory = "/var/a1"; user = "root"; group = "4242"; mode = "0700"; }
    { directory = "/var/café2"; user = "alice"; group = "4242"; mode = "0755"; }
    { directory = "/var/y2"; user = "4242"; group = "web"; mode = "1777"; }
    { directory = "/var/zzzzzzzzzzzzzzzzzzzz3"; user = "alice"; group = "web"; mode = "0755"; }
  ];
  blankslate.persistence.files = [
    # in /a.b
    "/a.b"
    # in /etc
    "/etc/y2"
    # in /srv.old
    "/srv.old"
  ];
  environment.persistence."/persist".users.alice = {
    files = [
      # the home of alice, /home/alice
      ".bash_history"
    ];
  };
  environment.persistence."/persist".users.root = {
    files = [
      # the home of root, /root
      ".viminfo"
    ];
  };
  # Caches, rebuilt on demand: ignored by the audit rather than kept. To keep
  # one instead, move it up; to put the rule in the host's ignore file:
  #   blankslate ignore PATTERN --reason "a cache, rebuilt on demand"
  blankslate.audit.ignore = [
    # app.service: CacheDirectory (DynamicUser: systemd sets its owner at every start)
    "/var/cache/private/app/**"
    # the home of alice, /home/alice
    "/home/alice/.cache/**"
    # in /tmp
    "/tmp/a2/**"
    "/tmp/cache0/**"
    "/tmp/y1/**"
    "/tmp/y3/**"
  ];
}
# Hidden beneath mounts: their paths are declared already, but the data the
# root holds under them is erased; copy it with `blankslate seed --hidden`:
#   "/var/lib/nixos/a.b2" (hidden under the bind mount of /var/lib/nixos)
#   "/var/lib/nixos/a3" (hidden under the bind mount of /var/lib/nixos)
#   "/var/lib/nixos/zzzzzzzzzzzzzzzzzzzz0" (hidden under the bind mount of /var/lib/nixos)
#   "/home/alice/café1" (hidden under the mount of subvolume 'home' on /home)
#   "/home/f\nnl0" (hidden under the mount of subvolume 'home' on /home)
#   "/home/zzzzzzzzzzzzzzzzzzzz1" (hidden under the mount of subvolume 'home' on /home)
#   "/home/zzzzzzzzzzzzzzzzzzzz2" (hidden under the mount of subvolume 'home' on /home)
#   "/persist/a-b0" (hidden under the mount of subvolume 'persist' on /persist)
#   "/persist/a.b1" (hidden under the mount of subvolume 'persist' on /persist)
#   "/persist/a.b2" (hidden under the mount of subvolume 'persist' on /persist)
#   "/persist/cache1" (hidden under the mount of subvolume 'persist' on /persist)
#   "/persist/café3" (hidden under the mount of subvolume 'persist' on /persist)
#   "/persist/y2" (hidden under the mount of subvolume 'persist' on /persist)
# Not suggested:
#   /a-b: gone since the scan, or unreadable
#   /etc/x1: gone since the scan, or unreadable
#   /var/cache1: not a file or directory (a socket, fifo or device)
#   /var/lib/app: a symlink systemd makes for app
