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
    { directory = "/a/a.b3"; user = "alice"; group = "web"; mode = "0755"; }
    { directory = "/a/a2"; user = "web"; group = "web"; mode = "0750"; }
    { directory = "/a/cache0"; user = "alice"; group = "4242"; mode = "0755"; }
    { directory = "/a/café0"; user = "4242"; group = "root"; mode = "1777"; }
    { directory = "/a/café3"; user = "web"; group = "4242"; mode = "0750"; }
    { directory = "/a/f\nnl0"; user = "web"; group = "root"; mode = "0750"; }
    { directory = "/a/x0"; user = "web"; group = "alice"; mode = "0750"; }
    # in /a-b
    { directory = "/a-b/a-b1"; user = "4242"; group = "alice"; mode = "1777"; }
    { directory = "/a-b/a.b0"; user = "root"; group = "alice"; mode = "0700"; }
    { directory = "/a-b/a.b1"; user = "alice"; group = "4242"; mode = "0755"; }
    { directory = "/a-b/a.b3"; user = "alice"; group = "web"; mode = "0755"; }
    { directory = "/a-b/cache0"; user = "alice"; group = "root"; mode = "0755"; }
    { directory = "/a-b/café1"; user = "web"; group = "alice"; mode = "0750"; }
    { directory = "/a-b/café2"; user = "4242"; group = "web"; mode = "1777"; }
    { directory = "/a-b/café3"; user = "web"; group = "root"; mode = "0750"; }
    { directory = "/a-b/f\nnl1"; user = "alice"; group = "web"; mode = "0755"; }
    { directory = "/a-b/x0"; user = "alice"; group = "root"; mode = "0755"; }
    { directory = "/a-b/x2"; user = "alice"; group = "alice"; mode = "0755"; }
    { directory = "/a-b/y0"; user = "4242"; group = "root"; mode = "1777"; }
    { directory = "/a-b/y1"; user = "web"; group = "web"; mode = "0750"; }
    { directory = "/a-b/y3"; user = "web"; group = "4242"; mode = "0750"; }
    { directory = "/a-b/zzzzzzzzzzzzzzzzzzzz0"; user = "alice"; group = "4242"; mode = "0755"; }
    { directory = "/a-b/zzzzzzzzzzzzzzzzzzzz1"; user = "root"; group = "alice"; mode = "0700"; }
    # in /a.b
    { directory = "/a.b/a-b2"; user = "root"; group = "root"; mode = "0700"; }
    { directory = "/a.b/a-b3"; user = "alice"; group = "web"; mode = "0755"; }
    { directory = "/a.b/a.b3"; user = "4242"; group = "root"; mode = "1777"; }
    { directory = "/a.b/a0"; user = "alice"; group = "root"; mode = "0755"; }
    { directory = "/a.b/a2"; user = "alice"; group = "alice"; mode = "0755"; }
    { directory = "/a.b/a3"; user = "root"; group = "4242"; mode = "0700"; }
    { directory = "/a.b/cache0"; user = "4242"; group = "root"; mode = "1777"; }
    { directory = "/a.b/café0"; user = "alice"; group = "4242"; mode = "0755"; }
    { directory = "/a.b/café3"; user = "root"; group = "root"; mode = "0700"; }
    { directory = "/a.b/f\nnl1"; user = "web"; group = "4242"; mode = "0750"; }
    { directory = "/a.b/f\nnl3"; user = "web"; group = "web"; mode = "0750"; }
    { directory = "/a.b/x1"; user = "root"; group = "root"; mode = "0700"; }
    { directory = "/a.b/zzzzzzzzzzzzzzzzzzzz0"; user = "alice"; group = "web"; mode = "0755"; }
    { directory = "/a.b/zzzzzzzzzzzzzzzzzzzz3"; user = "root"; group = "alice"; mode = "0700"; }
    # in /etc
    { directory = "/etc/a-b0"; user = "alice"; group = "root"; mode = "0755"; }
    { directory = "/etc/a2"; user = "4242"; group = "4242"; mode = "1777"; }
    { directory = "/etc/cache0"; user = "4242"; group = "root"; mode = "1777"; }
    { directory = "/etc/cache1"; user = "web"; group = "web"; mode = "0750"; }
    { directory = "/etc/café2"; user = "alice"; group = "web"; mode = "0755"; }
    { directory = "/etc/café3"; user = "root"; group = "root"; mode = "0700"; }
    { directory = "/etc/f\nnl2"; user = "web"; group = "4242"; mode = "0750"; }
    { directory = "/etc/ssh"; user = "web"; group = "alice"; mode = "0750"; }
    { directory = "/etc/x0"; user = "4242"; group = "root"; mode = "1777"; }
    { directory = "/etc/zzzzzzzzzzzzzzzzzzzz2"; user = "root"; group = "alice"; mode = "0700"; }
    { directory = "/etc/zzzzzzzzzzzzzzzzzzzz3"; user = "alice"; group = "4242"; mode = "0755"; }
    # in /home
    { directory = "/home/bob"; user = "web"; group = "web"; mode = "0750"; }
    # in /srv
    { directory = "/srv"; user = "root"; group = "root"; mode = "0700"; }
    # in /srv.old
    { directory = "/srv.old"; user = "alice"; group = "4242"; mode = "0755"; }
    # in /var
    { directory = "/var/a.b3"; user = "alice"; group = "4242"; mode = "0755"; }
    { directory = "/var/a0"; user = "alice"; group = "alice"; mode = "0755"; }
    { directory = "/var/a2"; user = "alice"; group = "root"; mode = "0755"; }
    { directory = "/var/a3"; user = "root"; group = "web"; mode = "0700"; }
    { directory = "/var/cache2"; user = "4242"; group = "root"; mode = "1777"; }
    { directory = "/var/café0"; user = "alice"; group = "web"; mode = "0755"; }
    { directory = "/var/café2"; user = "alice"; group = "4242"; mode = "0755"; }
    { directory = "/var/café3"; user = "root"; group = "alice"; mode = "0700"; }
    { directory = "/var/f\nnl0"; user = "root"; group = "web"; mode = "0700"; }
    { directory = "/var/x3"; user = "root"; group = "root"; mode = "0700"; }
    { directory = "/var/y3"; user = "web"; group = "root"; mode = "0750"; }
    { directory = "/var/zzzzzzzzzzzzzzzzzzzz0"; user = "root"; group = "alice"; mode = "0700"; }
  ];
  blankslate.persistence.files = [
    # in /a
    "/a/a.b2"
    "/a/a3"
    "/a/cache1"
    "/a/y2"
    "/a/zzzzzzzzzzzzzzzzzzzz1"
    # in /a-b
    "/a-b/x3"
    # in /a.b
    "/a.b/cache3"
    "/a.b/f\nnl0"
    "/a.b/y3"
    # in /etc
    "/etc/a.b0"
    "/etc/cache3"
    "/etc/x2"
    "/etc/y2"
    # in /var
    "/var/a-b1"
    "/var/y1"
    "/var/zzzzzzzzzzzzzzzzzzzz3"
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
    "/tmp/a.b0/**"
    "/tmp/a.b1/**"
    "/tmp/a0/**"
    "/tmp/a2/**"
    "/tmp/cache3"
    "/tmp/café2/**"
    # no ignore pattern matches this name; to keep it: { directory = "/tmp/f\nnl0"; user = "root"; group = "4242"; mode = "0700"; }
    # no ignore pattern matches this name; to keep it: { directory = "/tmp/f\nnl1"; user = "alice"; group = "alice"; mode = "0755"; }
    # no ignore pattern matches this name; to keep it: { directory = "/tmp/f\nnl2"; user = "root"; group = "web"; mode = "0700"; }
    # no ignore pattern matches this name; to keep it: { directory = "/tmp/f\nnl3"; user = "alice"; group = "root"; mode = "0755"; }
    "/tmp/x3/**"
    "/tmp/zzzzzzzzzzzzzzzzzzzz0/**"
    "/tmp/zzzzzzzzzzzzzzzzzzzz1/**"
  ];
}
# Hidden beneath mounts: their paths are declared already, but the data the
# root holds under them is erased; copy it with `blankslate seed --hidden`:
#   "/var/lib/nixos/a.b0" (hidden under the bind mount of /var/lib/nixos)
#   "/var/lib/nixos/a1" (hidden under the bind mount of /var/lib/nixos)
#   "/var/lib/nixos/f\nnl0" (hidden under the bind mount of /var/lib/nixos)
#   "/var/lib/nixos/x1" (hidden under the bind mount of /var/lib/nixos)
#   "/home/a.b0" (hidden under the mount of subvolume 'home' on /home)
#   "/home/a.b2" (hidden under the mount of subvolume 'home' on /home)
#   "/home/a.b3" (hidden under the mount of subvolume 'home' on /home)
#   "/home/a1" (hidden under the mount of subvolume 'home' on /home)
#   "/home/a2" (hidden under the mount of subvolume 'home' on /home)
#   "/home/alice/a-b0" (hidden under the mount of subvolume 'home' on /home)
#   "/home/alice/café2" (hidden under the mount of subvolume 'home' on /home)
#   "/home/alice/café3" (hidden under the mount of subvolume 'home' on /home)
#   "/home/alice/y0" (hidden under the mount of subvolume 'home' on /home)
#   "/home/alice/y2" (hidden under the mount of subvolume 'home' on /home)
#   "/home/alice/zzzzzzzzzzzzzzzzzzzz1" (hidden under the mount of subvolume 'home' on /home)
#   "/home/cache0" (hidden under the mount of subvolume 'home' on /home)
#   "/home/cache1" (hidden under the mount of subvolume 'home' on /home)
#   "/home/café0" (hidden under the mount of subvolume 'home' on /home)
#   "/home/café1" (hidden under the mount of subvolume 'home' on /home)
#   "/home/f\nnl0" (hidden under the mount of subvolume 'home' on /home)
#   "/home/f\nnl1" (hidden under the mount of subvolume 'home' on /home)
#   "/home/f\nnl2" (hidden under the mount of subvolume 'home' on /home)
#   "/home/x0" (hidden under the mount of subvolume 'home' on /home)
#   "/home/x1" (hidden under the mount of subvolume 'home' on /home)
#   "/home/x3" (hidden under the mount of subvolume 'home' on /home)
#   "/home/y0" (hidden under the mount of subvolume 'home' on /home)
#   "/home/zzzzzzzzzzzzzzzzzzzz1" (hidden under the mount of subvolume 'home' on /home)
#   "/var/log/cache0" (hidden under the mount of subvolume 'log' on /var/log)
#   "/var/log/f\nnl0" (hidden under the mount of subvolume 'log' on /var/log)
#   "/var/log/f\nnl3" (hidden under the mount of subvolume 'log' on /var/log)
#   "/persist" (hidden under the mount of subvolume 'persist' on /persist)
# Not suggested:
#   $'/home/alice/b\xffad0': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   $'/home/alice/b\xffad1': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   $'/home/b\xffad0': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   $'/var/lib/nixos/b\xffad2': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   $'/var/lib/nixos/b\xffad3': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   $'/var/log/b\xffad3': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   $'/a-b/b\xffad2': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   /a-b/y2: not a file or directory (a socket, fifo or device)
#   $'/a.b/b\xffad0': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   $'/a.b/b\xffad3': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   /a/a0: gone since the scan, or unreadable
#   $'/a/b\xffad0': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   $'/a/b\xffad3': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   $'/a/y3/b\xffad0': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   $'/a/y3/b\xffad1': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   $'/etc/b\xffad3/a1': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   $'/etc/f\nnl0': gone since the scan, or unreadable
#   /etc/x3: gone since the scan, or unreadable
#   /tmp/a-b3: not a file or directory (a socket, fifo or device)
#   $'/tmp/b\xffad0': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   $'/tmp/b\xffad2': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   $'/tmp/b\xffad3': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   /tmp/cache1/cache0/a.b0: gone since the scan, or unreadable
#   /tmp/cache2: gone since the scan, or unreadable
#   /var/lib/app: a symlink systemd makes for app
