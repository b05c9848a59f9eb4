"""The Nix commands this tool runs: one argv builder per external command (process.py runs them).

`nix eval` of a host's plan (plansource.py), `nix-prefetch-url` for `pin`, and
`nixos-generate-config` / `nixos-install` for `install`.
"""

from __future__ import annotations

from pathlib import Path


def eval_plan(flake: str, host: str) -> list[str]:
    """`nix eval` of `config.blankslate.plan` of host `host` in flake `flake`, as JSON."""
    return [
        "nix",
        "--extra-experimental-features",
        "nix-command flakes",
        "eval",
        "--json",
        f"{flake}#nixosConfigurations.{host}.config.blankslate.plan",
    ]


def prefetch_url_unpack(url: str) -> list[str]:
    return ["nix-prefetch-url", "--unpack", url]


def nixos_generate_config(root: Path) -> list[str]:
    return [
        "nixos-generate-config",
        "--root",
        str(root),
        "--no-filesystems",
        "--show-hardware-config",
    ]


def nixos_install(root: Path, flake: str, host: str, *, bootloader: bool = True) -> list[str]:
    """`bootloader` False: --no-bootloader, nixos-install's own flag (nixpkgs
    pkgs/by-name/ni/nixos-install/nixos-install.sh), which skips its `switch-to-configuration
    boot` step and so every grub-install."""
    command = ["nixos-install", "--root", str(root), "--flake", f"{flake}#{host}"]
    return [*command, "--no-root-passwd", *([] if bootloader else ["--no-bootloader"])]
