# blankslate diff --suggest: what the next boot would erase, as configuration for the
# host (hosts/<name>/default.nix). Keep the lines you want; what you drop stays lost.
{
  blankslate.persistence.directories = [
    # app.service: CacheDirectory (DynamicUser: systemd sets its owner at every start)
    { directory = "/var/lib/private/app"; user = "root"; group = "root"; mode = "0755"; }
    # web.service: StateDirectory
    { directory = "/var/lib/web-uploads"; user = "web"; group = "4242"; mode = "0750"; }
    # in /a
    { directory = "/a/a-b0"; user = "web"; group = "4242"; mode = "0750"; }
    { directory = "/a/a.b2/x0"; user = "web"; group = "alice"; mode = "0750"; }
    { directory = "/a/cache2"; user = "alice"; group = "web"; mode = "0755"; }
    { directory = "/a/café0"; user = "4242"; group = "root"; mode = "1777"; }
    { directory = "/a/café3"; user = "web"; group = "4242"; mode = "0750"; }
    { directory = "/a/f\nnl0"; user = "web"; group = "root"; mode = "0750"; }
    { directory = "/a/f\nnl1"; user = "4242"; group = "web"; mode = "1777"; }
    { directory = "/a/zzzzzzzzzzzzzzzzzzzz0"; user = "alice"; group = "web"; mode = "0755"; }
    # in /a.b
    { directory = "/a.b/a.b1"; user = "4242"; group = "alice"; mode = "1777"; }
    { directory = "/a.b/a.b2"; user = "web"; group = "web"; mode = "0750"; }
    { directory = "/a.b/café0"; user = "alice"; group = "4242"; mode = "0755"; }
    { directory = "/a.b/f\nnl0"; user = "4242"; group = "alice"; mode = "1777"; }
    { directory = "/a.b/f\nnl3"; user = "web"; group = "web"; mode = "0750"; }
    { directory = "/a.b/x1"; user = "root"; group = "root"; mode = "0700"; }
    { directory = "/a.b/y1"; user = "web"; group = "root"; mode = "0750"; }
    { directory = "/a.b/y3"; user = "web"; group = "alice"; mode = "0750"; }
    { directory = "/a.b/zzzzzzzzzzzzzzzzzzzz1"; user = "root"; group = "root"; mode = "0700"; }
    # in /etc
    { directory = "/etc/a-b1"; user = "root"; group = "web"; mode = "0700"; }
    { directory = "/etc/a.b0"; user = "4242"; group = "web"; mode = "1777"; }
    { directory = "/etc/a.b1"; user = "web"; group = "root"; mode = "0750"; }
    { directory = "/etc/a.b2"; user = "4242"; group = "4242"; mode = "1777"; }
    { directory = "/etc/cache0/a0"; user = "4242"; group = "root"; mode = "1777"; }
    { directory = "/etc/f\nnl3"; user = "4242"; group = "alice"; mode = "1777"; }
    { directory = "/etc/ssh"; user = "web"; group = "alice"; mode = "0750"; }
    { directory = "/etc/zzzzzzzzzzzzzzzzzzzz3"; user = "alice"; group = "4242"; mode = "0755"; }
    # in /home
    { directory = "/home/bob"; user = "web"; group = "web"; mode = "0750"; }
    # in /srv
    { directory = "/srv"; user = "root"; group = "root"; mode = "0700"; }
    # in /srv.old
    { directory = "/srv.old/cache0"; user = "4242"; group = "4242"; mode = "1777"; }
    { directory = "/srv.old/cache1"; user = "web"; group = "alice"; mode = "0750"; }
    { directory = "/srv.old/cache3"; user = "web"; group = "root"; mode = "0750"; }
    { directory = "/srv.old/zzzzzzzzzzzzzzzzzzzz3"; user = "alice"; group = "root"; mode = "0755"; }
    # in /var
    { directory = "/var/a-b1"; user = "4242"; group = "root"; mode = "1777"; }
    { directory = "/var/a.b0"; user = "root"; group = "root"; mode = "0700"; }
    { directory = "/var/a0"; user = "alice"; group = "alice"; mode = "0755"; }
    { directory = "/var/x2"; user = "alice"; group = "web"; mode = "0755"; }
    { directory = "/var/y0"; user = "4242"; group = "4242"; mode = "1777"; }
    { directory = "/var/zzzzzzzzzzzzzzzzzzzz1"; user = "alice"; group = "4242"; mode = "0755"; }
  ];
  blankslate.persistence.files = [
    # in /a
    "/a/a-b3"
    "/a/café2"
    # in /a.b
    "/a.b/a-b2"
    # in /srv.old
    "/srv.old/a3"
    "/srv.old/café2"
    # in /var
    "/var/y3"
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
    "/tmp/a-b1/**"
    "/tmp/a2/**"
    "/tmp/cache1/**"
    "/tmp/café1"
    # no ignore pattern matches this name; to keep it: "/tmp/f\nnl0"
    # no ignore pattern matches this name; to keep it: { directory = "/tmp/f\nnl1"; user = "alice"; group = "alice"; mode = "0755"; }
    "/tmp/x1/**"
    "/tmp/y3/**"
    "/tmp/zzzzzzzzzzzzzzzzzzzz2/**"
  ];
}
# Hidden beneath mounts: their paths are declared already, but the data the
# root holds under them is erased; copy it with `blankslate seed --hidden`:
#   "/var/lib/nixos/a.b0" (hidden under the bind mount of /var/lib/nixos)
#   "/var/lib/nixos/café0.tmp" (hidden under the bind mount of /var/lib/nixos)
#   "/var/lib/nixos/y2" (hidden under the bind mount of /var/lib/nixos)
#   "/var/lib/nixos/zzzzzzzzzzzzzzzzzzzz3" (hidden under the bind mount of /var/lib/nixos)
#   "/home/a.b0" (hidden under the mount of subvolume 'home' on /home)
#   "/home/a.b2" (hidden under the mount of subvolume 'home' on /home)
#   "/home/a.b3" (hidden under the mount of subvolume 'home' on /home)
#   "/home/a0" (hidden under the mount of subvolume 'home' on /home)
#   "/home/a1" (hidden under the mount of subvolume 'home' on /home)
#   "/home/alice/a0" (hidden under the mount of subvolume 'home' on /home)
#   "/home/alice/a2" (hidden under the mount of subvolume 'home' on /home)
#   "/home/alice/cache1" (hidden under the mount of subvolume 'home' on /home)
#   "/home/alice/café0" (hidden under the mount of subvolume 'home' on /home)
#   "/home/alice/zzzzzzzzzzzzzzzzzzzz2" (hidden under the mount of subvolume 'home' on /home)
#   "/home/café2" (hidden under the mount of subvolume 'home' on /home)
#   "/home/café3" (hidden under the mount of subvolume 'home' on /home)
#   "/home/f\nnl1" (hidden under the mount of subvolume 'home' on /home)
#   "/home/f\nnl2" (hidden under the mount of subvolume 'home' on /home)
#   "/home/y1" (hidden under the mount of subvolume 'home' on /home)
#   "/var/log/a-b1" (hidden under the mount of subvolume 'log' on /var/log)
#   "/var/log/a.b3" (hidden under the mount of subvolume 'log' on /var/log)
#   "/var/log/f\nnl0" (hidden under the mount of subvolume 'log' on /var/log)
#   "/var/log/x2" (hidden under the mount of subvolume 'log' on /var/log)
#   "/persist/a-b0" (hidden under the mount of subvolume 'persist' on /persist)
#   "/persist/a.b0" (hidden under the mount of subvolume 'persist' on /persist)
#   "/persist/a.b2" (hidden under the mount of subvolume 'persist' on /persist)
#   "/persist/a.b3" (hidden under the mount of subvolume 'persist' on /persist)
#   "/persist/a0" (hidden under the mount of subvolume 'persist' on /persist)
#   "/persist/a1" (hidden under the mount of subvolume 'persist' on /persist)
#   "/persist/a2" (hidden under the mount of subvolume 'persist' on /persist)
#   "/persist/café0" (hidden under the mount of subvolume 'persist' on /persist)
#   "/persist/f\nnl0" (hidden under the mount of subvolume 'persist' on /persist)
#   "/persist/x2" (hidden under the mount of subvolume 'persist' on /persist)
#   "/persist/y1" (hidden under the mount of subvolume 'persist' on /persist)
# Not suggested:
#   $'/home/alice/b\xffad0': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   $'/home/alice/b\xffad3': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   $'/home/b\xffad1': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   $'/persist/b\xffad1': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   $'/persist/b\xffad2': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   $'/var/lib/nixos/b\xffad3': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   $'/var/log/b\xffad1': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   /a-b: gone since the scan, or unreadable
#   $'/a.b/b\xffad1': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   $'/a.b/b\xffad2': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   $'/a.b/b\xffad3': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   /a/a1: gone since the scan, or unreadable
#   $'/a/b\xffad1': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   $'/a/b\xffad3': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   /a/zzzzzzzzzzzzzzzzzzzz3: gone since the scan, or unreadable
#   $'/etc/f\nnl1': not a file or directory (a socket, fifo or device)
#   $'/srv.old/b\xffad3': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   /tmp/cache3: not a file or directory (a socket, fifo or device)
#   /tmp/x0: not a file or directory (a socket, fifo or device)
#   /var/a.b2: gone since the scan, or unreadable
#   $'/var/b\xffad2': Nix strings cannot hold this name printably (bytes that are not UTF-8, or a control character)
#   /var/lib/app: a symlink systemd makes for app
