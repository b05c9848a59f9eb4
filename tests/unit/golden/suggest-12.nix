# blankslate diff --suggest: what the next boot would erase, as configuration for the
# host (hosts/<name>/default.nix). Keep the lines you want; what you drop stays lost.
{
  blankslate.persistence.directories = [
    # app.service: CacheDirectory (DynamicUser: systemd sets its owner at every start)
    { directory = "/var/lib/private/app"; user = "root"; group = "root"; mode = "0755"; }
    # web.service: StateDirectory
    { directory = "/var/lib/web-uploads"; user = "web"; group = "4242"; mode = "0750"; }
    # in /a
    { directory = "/a/a-b2"; user = "web"; group = "web"; mode = "0750"; }
    { directory = "/a/a.b0"; user = "root"; group = "alice"; mode = "0700"; }
    { directory = "/a/a.b3"; user = "alice"; group = "web"; mode = "0755"; }
    { directory = "/a/a3"; user = "4242"; group = "root"; mode = "1777"; }
    { directory = "/a/f\nnl0"; user = "web"; group = "root"; mode = "0750"; }
    { directory = "/a/x1"; user = "4242"; group = "4242"; mode = "1777"; }
    { directory = "/a/x3"; user = "4242"; group = "web"; mode = "1777"; }
    { directory = "/a/y1"; user = "alice"; group = "4242"; mode = "0755"; }
    { directory = "/a/y2"; user = "root"; group = "root"; mode = "0700"; }
    # in /a-b
    { directory = "/a-b/a.b3"; user = "alice"; group = "web"; mode = "0755"; }
    { directory = "/a-b/café3"; user = "web"; group = "root"; mode = "0750"; }
    { directory = "/a-b/f\nnl3"; user = "alice"; group = "4242"; mode = "0755"; }
    { directory = "/a-b/y0"; user = "4242"; group = "root"; mode = "1777"; }
    { directory = "/a-b/y1"; user = "web"; group = "web"; mode = "0750"; }
    # in /a.b
    { directory = "/a.b"; user = "4242"; group = "4242"; mode = "1777"; }
    # in /etc
    { directory = "/etc/a-b2"; user = "alice"; group = "alice"; mode = "0755"; }
    { directory = "/etc/a.b0"; user = "4242"; group = "web"; mode = "1777"; }
    { directory = "/etc/a0"; user = "4242"; group = "web"; mode = "1777"; }
    { directory = "/etc/cache1"; user = "web"; group = "web"; mode = "0750"; }
    { directory = "/etc/cache3"; user = "web"; group = "4242"; mode = "0750"; }
    { directory = "/etc/ssh"; user = "web"; group = "alice"; mode = "0750"; }
    { directory = "/etc/x0"; user = "4242"; group = "root"; mode = "1777"; }
    { directory = "/etc/zzzzzzzzzzzzzzzzzzzz2"; user = "root"; group = "alice"; mode = "0700"; }
    # in /home
    { directory = "/home/bob"; user = "web"; group = "web"; mode = "0750"; }
    # in /srv
    { directory = "/srv"; user = "root"; group = "root"; mode = "0700"; }
    # in /srv.old
    { directory = "/srv.old/café1"; user = "root"; group = "web"; mode = "0700"; }
    { directory = "/srv.old/zzzzzzzzzzzzzzzzzzzz1"; user = "alice"; group = "alice"; mode = "0755"; }
    # in /var
    { directory = "/var/a-b0"; user = "web"; group = "web"; mode = "0750"; }
    { directory = "/var/a-b1"; user = "4242"; group = "root"; mode = "1777"; }
    { directory = "/var/a.b0"; user = "root"; group = "root"; mode = "0700"; }
    { directory = "/var/a.b3"; user = "alice"; group = "4242"; mode = "0755"; }
    { directory = "/var/y0"; user = "4242"; group = "4242"; mode = "1777"; }
    { directory = "/var/y2"; user = "4242"; group = "web"; mode = "1777"; }
  ];
  blankslate.persistence.files = [
    # in /a
    "/a/cache1"
    "/a/y3"
    # in /etc
    "/etc/f\nnl1"
    "/etc/f\nnl2"
    "/etc/y3"
    # in /srv.old
    "/srv.old/a3"
    # in /var
    "/var/a-b2"
    "/var/a3"
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
    "/tmp/a.b1"
    "/tmp/a.b2/**"
    "/tmp/a0"
    "/tmp/café1/**"
    "/tmp/café2/**"
    "/tmp/café3/**"
    # no ignore pattern matches this name; to keep it: { directory = "/tmp/f\nnl1"; user = "alice"; group = "alice"; mode = "0755"; }
    "/tmp/y2/**"
    "/tmp/zzzzzzzzzzzzzzzzzzzz0/**"
  ];
}
# Hidden beneath mounts: their paths are declared already, but the data the
# root holds under them is erased; copy it with `blankslate seed --hidden`:
#   "/var/lib/nixos/a.b2" (hidden under the bind mount of /var/lib/nixos)
#   "/var/lib/nixos/a2" (hidden under the bind mount of /var/lib/nixos)
#   "/var/lib/nixos/cache0" (hidden under the bind mount of /var/lib/nixos)
#   "/var/lib/nixos/x0" (hidden under the bind mount of /var/lib/nixos)
#   "/home/a-b1" (hidden under the mount of subvolume 'home' on /home)
#   "/home/a-b2" (hidden under the mount of subvolume 'home' on /home)
#   "/home/a.b0" (hidden under the mount of subvolume 'home' on /home)
#   "/home/a.b1" (hidden under the mount of subvolume 'home' on /home)
#   "/home/a.b3" (hidden under the mount of subvolume 'home' on /home)
#   "/home/alice/a-b1" (hidden under the mount of subvolume 'home' on /home)
#   "/home/alice/a0" (hidden under the mount of subvolume 'home' on /home)
#   "/home/alice/cache1" (hidden under the mount of subvolume 'home' on /home)
#   "/home/alice/café1" (hidden under the mount of subvolume 'home' on /home)
#   "/home/alice/x0" (hidden under the mount of subvolume 'home' on /home)
#   "/home/cache1" (hidden under the mount of subvolume 'home' on /home)
#   "/home/cache2" (hidden under the mount of subvolume 'home' on /home)
#   "/home/y0" (hidden under the mount of subvolume 'home' on /home)
#   "/home/zzzzzzzzzzzzzzzzzzzz0" (hidden under the mount of subvolume 'home' on /home)
#   "/var/log/f\nnl2" (hidden under the mount of subvolume 'log' on /var/log)
#   "/var/log/y0" (hidden under the mount of subvolume 'log' on /var/log)
#   "/var/log/y2" (hidden under the mount of subvolume 'log' on /var/log)
#   "/persist/a-b0" (hidden under the mount of subvolume 'persist' on /persist)
#   "/persist/a-b2" (hidden under the mount of subvolume 'persist' on /persist)
#   "/persist/y2" (hidden under the mount of subvolume 'persist' on /persist)
#   "/persist/zzzzzzzzzzzzzzzzzzzz2" (hidden under the mount of subvolume 'persist' on /persist)
#   "/persist/zzzzzzzzzzzzzzzzzzzz3" (hidden under the mount of subvolume 'persist' on /persist)
# Not suggested:
#   $'/home/alice/b\xffad1': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   $'/home/b\xffad0': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   $'/home/b\xffad3': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   $'/persist/b\xffad2': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   $'/var/lib/nixos/b\xffad3': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   $'/a-b/b\xffad3': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   /a/a-b1: gone since the scan, or unreadable
#   $'/a/b\xffad2': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   /var/lib/app: a symlink systemd makes for app
