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
    # in /a-b
    { directory = "/a-b/a-b0"; user = "web"; group = "4242"; mode = "0750"; }
    { directory = "/a-b/a.b3"; user = "alice"; group = "web"; mode = "0755"; }
    { directory = "/a-b/cache1"; user = "root"; group = "web"; mode = "0700"; }
    { directory = "/a-b/cache2"; user = "alice"; group = "alice"; mode = "0755"; }
    { directory = "/a-b/café2"; user = "4242"; group = "web"; mode = "1777"; }
    { directory = "/a-b/f\nnl0"; user = "root"; group = "root"; mode = "0700"; }
    { directory = "/a-b/y2"; user = "4242"; group = "alice"; mode = "1777"; }
    { directory = "/a-b/y3"; user = "web"; group = "4242"; mode = "0750"; }
    { directory = "/a-b/zzzzzzzzzzzzzzzzzzzz0"; user = "alice"; group = "4242"; mode = "0755"; }
    # in /a.b
    { directory = "/a.b/a.b1"; user = "4242"; group = "alice"; mode = "1777"; }
    { directory = "/a.b/a.b2"; user = "web"; group = "web"; mode = "0750"; }
    { directory = "/a.b/a2/y3"; user = "root"; group = "alice"; mode = "0700"; }
    { directory = "/a.b/café3"; user = "root"; group = "root"; mode = "0700"; }
    { directory = "/a.b/f\nnl1"; user = "web"; group = "4242"; mode = "0750"; }
    { directory = "/a.b/x0"; user = "alice"; group = "web"; mode = "0755"; }
    { directory = "/a.b/y0"; user = "4242"; group = "web"; mode = "1777"; }
    { directory = "/a.b/y1"; user = "web"; group = "root"; mode = "0750"; }
    # in /etc
    { directory = "/etc/a0"; user = "4242"; group = "web"; mode = "1777"; }
    { directory = "/etc/f\nnl3"; user = "4242"; group = "alice"; mode = "1777"; }
    { directory = "/etc/ssh/ssh_host_ed25519_key/a.b1"; user = "alice"; group = "root"; mode = "0755"; }
    { directory = "/etc/ssh/ssh_host_ed25519_key/cache1"; user = "4242"; group = "4242"; mode = "1777"; }
    { directory = "/etc/ssh/ssh_host_ed25519_key/f\nnl1"; user = "root"; group = "web"; mode = "0700"; }
    { directory = "/etc/ssh/ssh_host_ed25519_key/f\nnl3"; user = "root"; group = "4242"; mode = "0700"; }
    { directory = "/etc/ssh/ssh_host_ed25519_key/x3"; user = "4242"; group = "alice"; mode = "1777"; }
    { directory = "/etc/y2"; user = "alice"; group = "alice"; mode = "0755"; }
    { directory = "/etc/zzzzzzzzzzzzzzzzzzzz3"; user = "alice"; group = "4242"; mode = "0755"; }
    # in /home
    { directory = "/home/bob"; user = "web"; group = "web"; mode = "0750"; }
    # in /srv
    { directory = "/srv/a-b2"; user = "root"; group = "web"; mode = "0700"; }
    { directory = "/srv/a0"; user = "root"; group = "web"; mode = "0700"; }
    { directory = "/srv/cache2"; user = "web"; group = "root"; mode = "0750"; }
    { directory = "/srv/f\nnl3"; user = "alice"; group = "4242"; mode = "0755"; }
    { directory = "/srv/y3"; user = "4242"; group = "4242"; mode = "1777"; }
    { directory = "/srv/zzzzzzzzzzzzzzzzzzzz1"; user = "web"; group = "root"; mode = "0750"; }
    # in /var
    { directory = "/var/a-b1"; user = "4242"; group = "root"; mode = "1777"; }
    { directory = "/var/a.b0/a.b2"; user = "alice"; group = "alice"; mode = "0755"; }
    { directory = "/var/a.b0/a2"; user = "web"; group = "web"; mode = "0750"; }
    { directory = "/var/a3"; user = "root"; group = "web"; mode = "0700"; }
    { directory = "/var/cache0"; user = "4242"; group = "alice"; mode = "1777"; }
    { directory = "/var/cache1"; user = "web"; group = "4242"; mode = "0750"; }
    { directory = "/var/f\nnl0"; user = "root"; group = "web"; mode = "0700"; }
    { directory = "/var/x0"; user = "alice"; group = "4242"; mode = "0755"; }
    { directory = "/var/y0"; user = "4242"; group = "4242"; mode = "1777"; }
    { directory = "/var/zzzzzzzzzzzzzzzzzzzz3"; user = "alice"; group = "web"; mode = "0755"; }
  ];
  blankslate.persistence.files = [
    # in /a-b
    "/a-b/x2"
    # in /a.b
    "/a.b/a-b2"
    "/a.b/x3"
    # in /srv.old
    "/srv.old"
    # in /var
    "/var/café0"
    "/var/zzzzzzzzzzzzzzzzzzzz2"
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
    "/tmp/a-b2/**"
    "/tmp/a1/**"
    "/tmp/a2/**"
    "/tmp/cache0/**"
    "/tmp/cache1/**"
    "/tmp/café1/**"
    "/tmp/café2/**"
    # no ignore pattern matches this name; to keep it: { directory = "/tmp/f\nnl2"; user = "root"; group = "web"; mode = "0700"; }
    "/tmp/x0/**"
    "/tmp/x1/**"
    "/tmp/y1"
    "/tmp/y2/**"
    "/tmp/zzzzzzzzzzzzzzzzzzzz2"
  ];
}
# Hidden beneath mounts: their paths are declared already, but the data the
# root holds under them is erased; copy it with `blankslate seed --hidden`:
#   "/var/lib/nixos/a-b3" (hidden under the bind mount of /var/lib/nixos)
#   "/var/lib/nixos/cache2" (hidden under the bind mount of /var/lib/nixos)
#   "/var/lib/nixos/f\nnl2" (hidden under the bind mount of /var/lib/nixos)
#   "/home/a-b2" (hidden under the mount of subvolume 'home' on /home)
#   "/home/a.b2" (hidden under the mount of subvolume 'home' on /home)
#   "/home/a.b3" (hidden under the mount of subvolume 'home' on /home)
#   "/home/a3" (hidden under the mount of subvolume 'home' on /home)
#   "/home/alice/a-b1.tmp" (hidden under the mount of subvolume 'home' on /home)
#   "/home/alice/a.b1" (hidden under the mount of subvolume 'home' on /home)
#   "/home/alice/cache3.tmp" (hidden under the mount of subvolume 'home' on /home)
#   "/home/alice/y1" (hidden under the mount of subvolume 'home' on /home)
#   "/home/cache0" (hidden under the mount of subvolume 'home' on /home)
#   "/home/café0" (hidden under the mount of subvolume 'home' on /home)
#   "/home/x2" (hidden under the mount of subvolume 'home' on /home)
#   "/home/zzzzzzzzzzzzzzzzzzzz1" (hidden under the mount of subvolume 'home' on /home)
#   "/var/log/a-b0" (hidden under the mount of subvolume 'log' on /var/log)
#   "/var/log/a.b1" (hidden under the mount of subvolume 'log' on /var/log)
#   "/var/log/cache3" (hidden under the mount of subvolume 'log' on /var/log)
#   "/var/log/zzzzzzzzzzzzzzzzzzzz0" (hidden under the mount of subvolume 'log' on /var/log)
#   "/persist" (hidden under the mount of subvolume 'persist' on /persist)
# Not suggested:
#   $'/home/alice/b\xffad2': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   $'/home/b\xffad2': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   $'/a-b/b\xffad0': not a file or directory (a socket, fifo or device)
#   $'/a.b/b\xffad2': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   $'/etc/b\xffad1': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   /etc/cache1: not a file or directory (a socket, fifo or device)
#   /etc/cache2: gone since the scan, or unreadable
#   /etc/x3: gone since the scan, or unreadable
#   $'/srv/b\xffad2': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   $'/tmp/b\xffad0': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   /var/a.b2: gone since the scan, or unreadable
#   /var/a.b3: not a file or directory (a socket, fifo or device)
#   $'/var/b\xffad0': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   /var/lib/app: a symlink systemd makes for app
