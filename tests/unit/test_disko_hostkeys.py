"""`blankslate disko`, host keys with their age recipients, `extra-files` and the boot modes of the
plan: rendering, argv, refusals. Every command is mocked (pytest-subprocess)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pytest_subprocess import FakeProcess

from blankslate import disko, extrafiles, hostkeys, install, plan, plansource
from blankslate.errors import BlankslateError

from ..support.plans import boot_plan_data as with_boot
from ..support.plans import zfs_storage

REPO = Path(__file__).resolve().parents[2]
DEFAULT_PLAN = REPO / "scripts/blankslate/default-plan.json"
# ssh-to-age's README: `ssh-to-age -i id_ed25519.pub` prints the first recipient for its
# test-assets/id_ed25519.pub (cmd/ssh-to-age/test-assets), and `ssh-keyscan eve.thalheim.io
# eva.thalheim.io | ssh-to-age` the other two, for the ed25519 keys of test-assets/keyscan.txt.
SSH_TO_AGE_VECTORS = [
    (
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOHz+U0YtjINc54dZiJNclfmEFifF7RXCFlNlTbuZBji "
        "joerg@turingmachine",
        "age17044m9wgakla6pzftf4srtl3h5mcsr85jysgt5fg23zpnta8sfdqhzn452",
    ),
    (
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIF/KPU3Z5LSjbBI6hrq25wCcseq2UpqSzUFZRr+ux6LM",
        "age1hjm3aujg9e79f5yth8a2cejzdjg5n9vnu96l05p70uvfpeltnpms7yy3pp",
    ),
    (
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIL2vjdqpppuCn7yPdF2muINriAG7zBWrsELKpPWkhn5",
        "age1v8zjc47jmlqwefyu66s0d4ke98qr4vnuj3cpvs4z9npfdw833dxqwjrhzv",
    ),
]


def example() -> plan.Plan:
    return plansource.default()


# --- age recipients ---------------------------------------------------------------------------


@pytest.mark.parametrize(("public", "recipient"), SSH_TO_AGE_VECTORS)
def test_age_recipient_is_ssh_to_ages(public: str, recipient: str) -> None:
    assert hostkeys.age_recipient(public) == recipient


def test_bech32_matches_bip173() -> None:
    # BIP 173's valid test vector "a12uel5l": hrp "a", no data.
    assert hostkeys.bech32_encode("a", b"") == "a12uel5l"


def test_rsa_keys_have_no_age_recipient() -> None:
    assert hostkeys.age_recipient("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ root@h") is None


@pytest.mark.parametrize(
    "line",
    [
        "",
        "ssh-ed25519",
        "ssh-ed25519 not-base64!",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5",  # no key
        "ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAABAQ",  # an rsa blob under the ed25519 name
    ],
)
def test_bad_public_keys_are_one_error(line: str) -> None:
    with pytest.raises(BlankslateError):
        hostkeys.age_recipient(line)


def test_a_non_point_is_refused() -> None:
    # y = 2 is not the y of a point of edwards25519 (x^2 has no root).
    with pytest.raises(ValueError, match="not a point"):
        hostkeys.ed25519_to_x25519((2).to_bytes(32, "little"))


@given(st.text(max_size=200))
def test_age_recipient_never_tracebacks(line: str) -> None:
    try:
        result = hostkeys.age_recipient(line)
    except BlankslateError:
        return
    assert result is None or result.startswith("age1")


# --- host key commands ------------------------------------------------------------------------


def test_host_key_builders() -> None:
    assert hostkeys.ssh_public_of(Path("/k")) == ["ssh-keygen", "-y", "-P", "", "-f", "/k"]
    assert hostkeys.ssh_fingerprint(Path("/k.pub")) == ["ssh-keygen", "-l", "-f", "/k.pub"]
    assert hostkeys.key_type("/persist/etc/ssh/ssh_host_rsa_key") == "rsa"
    assert hostkeys.key_type("/persist/etc/ssh/other") == "ed25519"


def keys_dir(tmp_path: Path, public: str | None) -> Path:
    source = tmp_path / "keys"
    source.mkdir()
    (source / "ssh_host_ed25519_key").write_text("PRIVATE\n")
    if public is not None:
        (source / "ssh_host_ed25519_key.pub").write_text(public + "\n")
    return source


def test_take_keys_checks_the_pair(tmp_path: Path, fp: FakeProcess) -> None:
    public, _ = SSH_TO_AGE_VECTORS[0]
    source = keys_dir(tmp_path, public)
    work = tmp_path / "work"
    work.mkdir()
    fp.register(
        ["ssh-keygen", "-y", "-P", "", "-f", str(work / "ssh_host_ed25519_key")], stdout=public
    )
    (key,) = hostkeys.take_keys(example(), source, work)
    assert key.private == b"PRIVATE\n" and key.public == public + "\n"
    assert key.path == "/persist/etc/ssh/ssh_host_ed25519_key"
    assert (work / "ssh_host_ed25519_key").stat().st_mode & 0o777 == 0o600


def test_take_keys_refuses_a_public_key_of_another_key(tmp_path: Path, fp: FakeProcess) -> None:
    source = keys_dir(tmp_path, SSH_TO_AGE_VECTORS[1][0])
    work = tmp_path / "work"
    work.mkdir()
    fp.register(["ssh-keygen", "-y", "-P", "", "-f", fp.any()], stdout=SSH_TO_AGE_VECTORS[0][0])
    with pytest.raises(BlankslateError, match="is not the public key of"):
        hostkeys.take_keys(example(), source, work)


def test_take_keys_makes_a_missing_public_key(tmp_path: Path, fp: FakeProcess) -> None:
    source = keys_dir(tmp_path, None)
    work = tmp_path / "work"
    work.mkdir()
    derived = SSH_TO_AGE_VECTORS[1][0]
    fp.register(["ssh-keygen", "-y", "-P", "", "-f", fp.any()], stdout=derived)
    (key,) = hostkeys.take_keys(example(), source, work)
    assert key.public == derived + " root@example\n"


def test_take_keys_refuses_missing_and_linked_keys(tmp_path: Path, fp: FakeProcess) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BlankslateError, match="does not exist"):
        hostkeys.take_keys(example(), empty, tmp_path)
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "ssh_host_ed25519_key").symlink_to("/etc/passwd")
    with pytest.raises(BlankslateError, match="cannot read"):
        hostkeys.take_keys(example(), linked, tmp_path)
    with pytest.raises(BlankslateError, match="not a directory"):
        hostkeys.take_keys(example(), tmp_path / "none", tmp_path)


# --- extra-files --------------------------------------------------------------------------------


def test_extra_files_refuses_a_non_empty_or_linked_directory(tmp_path: Path) -> None:
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("")
    with pytest.raises(BlankslateError, match="not empty"):
        extrafiles.check_directory(full)
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "empty")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BlankslateError, match="symlink"):
        extrafiles.check_directory(link)
    (tmp_path / "file").write_text("")
    with pytest.raises(BlankslateError, match="not a directory"):
        extrafiles.check_directory(tmp_path / "file")
    with pytest.raises(BlankslateError, match="does not exist"):
        extrafiles.check_directory(tmp_path / "no" / "such")
    extrafiles.check_directory(tmp_path / "empty")
    extrafiles.check_directory(tmp_path / "new")


OWN_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBQ3Yr8QJ5wxBcz0ZNrqGdM1JW6rnWOvK2ykXf6wzM1c me@laptop"
)


def plan_with_own_key(tmp_path: Path, keys: list[str] | None = None) -> str:
    """The built-in plan with the admin's key in place of the example's placeholder."""
    data = json.loads(DEFAULT_PLAN.read_text())
    data["users"][0]["authorizedKeys"] = [OWN_KEY] if keys is None else keys
    path = tmp_path / "own-key-plan.json"
    path.write_text(json.dumps(data))
    return str(path)


@pytest.mark.parametrize(
    ("keys", "said"),
    [
        (None, "admin admin's only SSH key is the example's placeholder"),
        ([], "no admin has an SSH key, so nobody could log in"),
    ],
)
def test_extra_files_refuses_a_lockout_before_writing(
    keys: list[str] | None,
    said: str,
    tmp_path: Path,
    run_cli: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The placeholder (the built-in plan's) or no key at all: nothing is asked or written."""
    plan_file = str(DEFAULT_PLAN) if keys is None else plan_with_own_key(tmp_path, keys)
    target = tmp_path / "tree"
    assert run_cli("extra-files", str(target), "--no-passwords", "--plan", plan_file) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and said in errors[0] and errors[0].endswith("nothing written")
    assert not target.exists()


def test_extra_files_dry_run_writes_nothing(
    tmp_path: Path, fp: FakeProcess, run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    public, recipient = SSH_TO_AGE_VECTORS[0]

    def keygen(process: Any) -> None:
        path = Path(process.args[-1])
        path.write_text("PRIVATE\n")
        path.with_name(path.name + ".pub").write_text(public + "\n")

    fp.register(["ssh-keygen", "-q", "-t", "ed25519", fp.any()], callback=keygen)
    fp.register(["ssh-keygen", "-l", "-f", fp.any()], stdout="256 SHA256:abc root@example\n")
    target = tmp_path / "tree"
    args = ["--dry-run", "--no-passwords", "--plan", plan_with_own_key(tmp_path)]
    assert run_cli("extra-files", str(target), *args) == 0
    out = capsys.readouterr().out
    assert f"would write {target}/persist/etc/ssh/ssh_host_ed25519_key\n" in out
    assert f"age recipient: {recipient}" in out
    assert "Dry run: nothing was written." in out
    assert not target.exists()


def test_extra_files_usage(run_cli: Callable[..., int], tmp_path: Path) -> None:
    assert run_cli("extra-files") == 2
    (tmp_path / "x").write_text("")
    assert run_cli("extra-files", str(tmp_path), "--no-passwords") == 1


# --- disko ----------------------------------------------------------------------------------


def test_disko_prints_an_expression(
    run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    monkeypatch.setattr(plansource, "INSTALLED_PLAN", Path("/nonexistent/plan.json"))
    assert run_cli("disko", "--disk", "/dev/sda", "--plan", str(DEFAULT_PLAN)) == 0
    out = capsys.readouterr().out
    assert out.startswith("# disko layout of host example")
    assert '          device = "/dev/sda";\n' in out
    assert "postCreateHook = " in out and "blankslate_blank=root-blank\\n" in out


def test_disko_prints_the_plans_tree_with_the_disk_replaced() -> None:
    """The tree is the plan's (Nix rendered it); only the device changes, in a copy."""
    loaded = example()
    assert loaded.disko is not None
    devices = disko.devices(loaded, "/dev/sdb")
    assert devices["disk"]["main"]["device"] == "/dev/sdb"
    devices["disk"]["main"]["device"] = "/dev/vda"
    assert devices == loaded.disko
    assert disko.devices(loaded) == loaded.disko  # no --disk: the plan's own


@pytest.mark.parametrize("disk", ["sda", "/dev/../etc/passwd", "/dev/", "/dev/sda b"])
def test_disko_takes_only_a_device_path(
    disk: str, run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    """`--disk sda` once became `device = "sda";`, a disk disko cannot find."""
    assert run_cli("disko", "--disk", disk, "--plan", str(DEFAULT_PLAN)) == 1
    err = capsys.readouterr().err
    assert f"error: --disk {disk!r}: give the device's path" in err
    assert err.count("\n") == 1 + err.count("plan: ")


def test_recover_help_offers_dry_run_only_with_from_persist(
    run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("recover", "--help") == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "With --from-persist: say what would be copied" in help_text


def test_disko_without_a_disk_is_one_error(
    run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("disko", "--plan", str(REPO / "tests/plans/vpsfree.json")) == 1
    assert capsys.readouterr().err.endswith("nothing for disko\n")
    data = json.loads(plansource.default_text())
    data["disk"]["device"] = None
    data["disko"]["disk"]["main"]["device"] = None
    with pytest.raises(BlankslateError, match="give --disk DEV"):
        disko.devices(plan.from_json(data))
    assert disko.devices(plan.from_json(data), "/dev/sdc")["disk"]["main"]["device"] == "/dev/sdc"


def test_a_plan_from_before_the_tree_travelled_says_what_to_do(
    tmp_path: Path, run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    """Plan v2 without `disko` still reads (every other command works); disko says how to
    get a plan that carries it, on one line."""
    data = json.loads(plansource.default_text())
    del data["disko"]
    old = tmp_path / "old-plan.json"
    old.write_text(json.dumps(data))
    assert plansource.from_file(old).disko is None
    assert run_cli("disko", "--plan", str(old)) == 1
    err = capsys.readouterr().err
    assert "carries no disko tree" in err and "blankslate plan --host NAME" in err
    assert err.count("\n") == 1 + err.count("plan: ")


def with_disko(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(plansource.default_text())
    change(data)
    return data


def _set(path: tuple[str, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set(("disko",), []), "plan: disko: expected an object"),
        (_set(("disko", "disk"), {}), "plan: disko.disk.main: missing"),
        (_set(("disko", "disk", "main"), "x"), "plan: disko.disk.main: missing"),
        (_set(("disko",), {}), "plan: disko.disk.main: missing"),
        (_set(("disko", "zpool"), 1.5), "plan: disko.zpool: expected a string, a 64-bit"),
        (_set(("disko", "nodev"), 2**63), "expected a string, a 64-bit integer"),
        (_set(("disko", "nodev"), ["a\0b"]), "disko.nodev[0]: a string holding NUL"),
        (_set(("disko", "nodev"), {"\ud800": 1}), 'disko.nodev: key "\\ud800" holds'),
        (_set(("disk",), None), "needs a disk section"),
    ],
)
def test_bad_disko_trees_are_one_line_errors(
    change: Callable[[dict[str, Any]], None], message: str
) -> None:
    data = with_disko(change)
    with pytest.raises(BlankslateError) as raised:
        plan.from_json(data)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_the_device_is_always_the_plans_disk_or_disk() -> None:
    """Whatever device the tree holds, the printed one is disk.device (what install
    partitions) or --disk; a plan without a disk has nothing for disko, tree or not."""
    data = json.loads(plansource.default_text())
    data["disko"]["disk"]["main"]["device"] = "/dev/other"
    assert disko.devices(plan.from_json(data))["disk"]["main"]["device"] == "/dev/vda"
    data = json.loads((REPO / "tests/plans/vpsfree.json").read_text())
    assert plan.from_json(data).disko is None
    data["disko"] = json.loads(plansource.default_text())["disko"]
    with pytest.raises(BlankslateError, match="nothing for disko"):
        disko.devices(plan.from_json(data))


def test_disko_keeps_disk_order_and_disko_key_order() -> None:
    """Partitions by priority whatever their names sort as; `type` before the rest; options
    and the names of subvolumes and datasets (data, not disko keys) sorted."""
    tree: dict[str, Any] = {
        "nodev": {},
        "disk": {
            "main": {
                "content": {
                    "type": "gpt",
                    "partitions": {
                        "a": {"priority": 3, "type": "8300"},
                        "Z": {"priority": 1, "type": "EF02"},
                        "m": {"priority": 2, "type": "EF00"},
                    },
                },
                "device": "/dev/vda",
                "type": "disk",
            }
        },
    }
    data = json.loads(plansource.default_text())
    data["disko"] = tree
    text = disko.expression(plan.from_json(data))
    assert text.index("Z = {") < text.index("m = {") < text.index("a = {")
    assert text.index("disk = {") < text.index("nodev = { };")
    main = text[text.index("main = {") :]
    assert main.index('type = "disk"') < main.index("device = ") < main.index("content = {")
    content = disko.key_order(("options",), {"type": "x", "ashift": "12"})
    assert list(content) == ["ashift", "type"]


def test_disko_tree_of_zfs_has_installs_pool_properties() -> None:
    """install's `zpool create` properties (zfs.py) are the tree's (modules/disko/devices.nix
    writes them too)."""
    from blankslate import zfs

    loaded = plansource.from_file(REPO / "tests/plans/zfs.json")
    assert loaded.disko is not None
    pool = loaded.disko["zpool"][zfs_storage(loaded).pool]
    split = [option.partition("=") for option in zfs.POOL_OPTIONS]
    assert pool["options"] == {name: value for name, _, value in split}
    split = [option.partition("=") for option in zfs.DATASET_OPTIONS]
    assert pool["rootFsOptions"] == {name: value for name, _, value in split}


# --- boot modes in the plan -----------------------------------------------------------------


@pytest.mark.parametrize("boot", ["uefi", "bios", "hybrid"])
def test_each_boot_mode_is_a_valid_plan(boot: str) -> None:
    loaded = plan.from_json(with_boot(boot))
    assert loaded.disk is not None and loaded.disk.boot == boot


def test_plans_without_boot_boot_through_uefi() -> None:
    data = json.loads(plansource.default_text())
    del data["disk"]["boot"]
    loaded = plan.from_json(data)
    assert loaded.disk is not None and loaded.disk.boot == "uefi"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["disk"].update(boot="bios"), "has no BIOS boot partition"),
        (lambda d: d["disk"].update(boot="coreboot"), "expected one of"),
        (lambda d: d["disk"]["partitions"][0].update(format="none"), "null exactly when"),
        (lambda d: d["disk"]["partitions"][0].update(type="ef02"), "has BIOS boot partition"),
        (lambda d: d["disk"]["partitions"][1].update(name="ESP"), "duplicate name"),
        (lambda d: d["disk"]["partitions"][0].update(type="8300"), "needs a vfat ESP"),
    ],
)
def test_boot_mode_mismatches_are_refused(change: Callable[[Any], None], message: str) -> None:
    data = json.loads(plansource.default_text())
    change(data)
    with pytest.raises(plan.PlanError, match=message):
        plan.from_json(data)


def test_the_bios_partition_is_not_formatted(fp: FakeProcess) -> None:
    """create_filesystems skips it; the rest are made as before, found by their numbers."""
    from blankslate import layout

    loaded = plan.from_json(with_boot("bios"))
    parts = layout.partitions(loaded, "/dev/loop7")
    assert [node for _, node in parts.nodes][:2] == ["/dev/loop7p1", "/dev/loop7p2"]
    fp.register(["mkfs.vfat", "-F", "32", "-n", "BOOT", "/dev/loop7p2"])
    fp.register(["mkswap", "--label", "swap", "/dev/loop7p3"])
    fp.register(["mkfs.btrfs", "--force", "--label", "nixos", "/dev/loop7p4"])
    layout.create_filesystems(loaded, parts, dry_run=False)
    assert len(fp.calls) == 3


def test_install_passes_host_keys_from(
    run_cli: Callable[..., int], monkeypatch: Any, tmp_path: Path
) -> None:
    seen: list[install.InstallOptions] = []

    def fake_install(_plan: plan.Plan, options: install.InstallOptions) -> install.Summary:
        seen.append(options)
        return install.Summary("/dev/loopN")

    monkeypatch.setattr(install, "install", fake_install)
    monkeypatch.setattr(plansource, "INSTALLED_PLAN", Path("/nonexistent/plan.json"))
    image = str(tmp_path / "i.img")
    args = ["install", "--image", image, "--dry-run", "--host-keys-from", str(tmp_path)]
    assert run_cli(*args) == 0
    assert seen[0].host_keys_from == tmp_path
    assert run_cli("install", "--image", image, "--host-keys-from", str(tmp_path / "x.img")) == 0
    # typer refuses a file where a directory is wanted
    (tmp_path / "file").write_text("")
    assert run_cli("install", "--image", image, "--host-keys-from", str(tmp_path / "file")) == 2
