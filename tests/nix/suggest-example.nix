# The persistence example host (no /home filesystem: what a home holds on / is lost, not
# hidden) with services that keep state in directories systemd makes for them, the ways
# nixpkgs' modules write them: a DynamicUser service (its state in /var/lib/private), a static
# user's service with a list and a "path:symlink" entry, a space-separated string with
# DynamicUser = "yes", and a disabled service. Its plan is tests/plans/suggest.json, which
# `diff --suggest` reads in the integration tier.
{ ... }:
{
  imports = [ ./persistence-example.nix ];
  systemd.services = {
    app = {
      serviceConfig = {
        DynamicUser = true;
        StateDirectory = "app";
        CacheDirectory = "app";
      };
    };
    web = {
      serviceConfig = {
        User = "web";
        Group = "www";
        StateDirectory = [
          "web"
          "web-uploads:uploads"
        ];
        LogsDirectory = "web";
      };
    };
    two = {
      serviceConfig.StateDirectory = "two-a  two-b";
      serviceConfig.DynamicUser = "yes";
    };
    off = {
      enable = false;
      serviceConfig.StateDirectory = "off";
    };
  };
}
