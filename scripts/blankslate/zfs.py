"""ZFS builders. One function per `zpool`/`zfs` command, so tests can assert argv."""

from __future__ import annotations

# Sane server defaults; mountpoint=legacy because NixOS mounts datasets through fileSystems.
POOL_OPTIONS = ["ashift=12"]
DATASET_OPTIONS = ["compression=zstd", "acltype=posixacl", "xattr=sa", "mountpoint=legacy"]


def zpool_create(pool: str, device: str) -> list[str]:
    args = ["zpool", "create", "-f"]
    for option in POOL_OPTIONS:
        args += ["-o", option]
    for option in DATASET_OPTIONS:
        args += ["-O", option]
    return [*args, pool, device]


def zfs_create(dataset: str) -> list[str]:
    return ["zfs", "create", "-p", dataset]


def zfs_snapshot(dataset: str, snapshot: str) -> list[str]:
    return ["zfs", "snapshot", f"{dataset}@{snapshot}"]


def zfs_list(name: str, *, snapshots: bool = False) -> list[str]:
    args = ["zfs", "list", "-H", "-o", "name"]
    if snapshots:
        args += ["-t", "snapshot"]
    return [*args, name]


def list_snapshots(dataset: str) -> list[str]:
    """ "createtxg<TAB>pool/ds@name" per snapshot of `dataset` itself, exact numbers."""
    return ["zfs", "list", "-H", "-p", "-t", "snapshot", "-d", "1", "-o", "createtxg,name", dataset]


def send(snapshot: str, since: str | None = None) -> list[str]:
    """`snapshot` (pool/ds@name) as a stream on stdout; with `since` ("@older"), only what
    changed since that snapshot."""
    args = ["zfs", "send"]
    if since is not None:
        args += ["-i", since]
    return [*args, snapshot]
