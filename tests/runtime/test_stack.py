"""The libedgetpu/interpreter stack table (edgekit.edgetpu.stack), `edgekit stack`, and
scripts/setup-pi.sh planning exactly that stack (--dry-run, for several machines)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgekit.cli import main
from edgekit.edgetpu import stack

ROOT = Path(__file__).resolve().parents[2]
SETUP = ROOT / "scripts" / "setup-pi.sh"
KEYS = {"os", "arch", "python", "status", "libedgetpu", "interpreter", "why"}
DEB = re.compile(
    r"^https://github\.com/feranick/libedgetpu/releases/download/v?16\.0TF(\d+\.\d+\.\d+)-1/"
    r"libedgetpu1-(std|max)_16\.0tf(\d+\.\d+\.\d+)-1\.(bullseye|bookworm|trixie)_"
    r"(arm64|armhf|amd64)\.deb$"
)


def stack_json(*args):
    r = CliRunner().invoke(main, ["stack", *args, "--json"])
    return r.exit_code, (json.loads(r.stdout) if r.stdout.strip() else None), r.stderr


def test_bookworm_arm64_311_is_a_proven_pair_of_one_tf_version():
    code, d, _ = stack_json("--os", "bookworm", "--arch", "arm64", "--python", "3.11")
    assert code == 0 and set(d) == KEYS and d["status"] == "proven"
    assert set(d["libedgetpu"]) == {"package", "version", "tf", "url"}
    assert set(d["interpreter"]) == {"package", "version", "tf", "source"}
    assert d["libedgetpu"]["tf"] == d["interpreter"]["tf"] == "2.17.1"
    assert d["libedgetpu"]["package"] == "libedgetpu1-std"
    m = DEB.match(d["libedgetpu"]["url"])
    assert m and m.groups() == ("2.17.1", "std", "2.17.1", "bookworm", "arm64")
    assert d["interpreter"]["package"] == "tflite-runtime"
    assert d["interpreter"]["source"].endswith(
        "/v2.17.1/tflite_runtime-2.17.1-cp311-cp311-linux_aarch64.whl"
    )
    assert "Frigate" in d["why"]


def test_trixie_313_runs_the_proven_pair_on_a_uv_python_and_names_the_experimental_one():
    code, d, _ = stack_json("--os", "trixie", "--arch", "arm64", "--python", "3.13")
    assert code == 0 and d["status"] == "documented" and d["python"] == "3.13"
    assert d["libedgetpu"]["tf"] == d["interpreter"]["tf"] == "2.17.1"
    assert "cp311" in d["interpreter"]["source"] and "uv" in d["why"] and "3.11" in d["why"]
    assert "--experimental" in d["why"]
    code, e, _ = stack_json("--os", "trixie", "--arch", "arm64", "--python", "3.13",
                            "--experimental")  # fmt: skip
    assert code == 0 and e["status"] == "experimental"
    assert e["interpreter"]["package"] == "ai-edge-litert" and e["interpreter"]["version"]
    assert DEB.match(e["libedgetpu"]["url"]).group(4) == "trixie"
    assert "nobody has shown" in e["why"]


def test_armhf_gets_a_refusal_with_the_way_out():
    code, d, _ = stack_json("--os", "bookworm", "--arch", "armhf", "--python", "3.11")
    assert code == 1 and d["status"] == "unsupported" and d["libedgetpu"] is None
    assert "64-bit" in d["why"]
    code, e, _ = stack_json("--os", "bookworm", "--arch", "armhf", "--python", "3.11",
                            "--experimental")  # fmt: skip
    assert code == 0 and e["status"] == "experimental" and "armhf" in e["libedgetpu"]["url"]
    # that release's tag is spelled with a "v"
    assert (
        "/download/v16.0TF2.15.1-1/libedgetpu1-std_16.0tf2.15.1-1.bookworm_armhf.deb"
        in (e["libedgetpu"]["url"])
    )
    # Bullseye, 32-bit or 64-bit: Coral's own stack, everything TF 2.5.
    code, b, _ = stack_json("--os", "bullseye", "--arch", "armhf", "--python", "3.9")
    assert code == 0 and b["status"] == "proven"
    assert b["libedgetpu"]["tf"] == b["interpreter"]["tf"] == "2.5.0"
    assert stack_json("--os", "bullseye", "--arch", "arm64", "--python", "3.11")[0] == 1


@pytest.mark.parametrize("args, words", [
    (["--os", "ubuntu"], "unknown OS release 'ubuntu'"),
    (["--os", "bookworm", "--arch", "riscv64"], "unknown architecture 'riscv64'"),
    (["--os", "bookworm", "--arch", "arm64", "--python", "three"], "not a Python version"),
    (["--os", "bookworm", "--arch", "arm64", "--python", "3.11.2"], "not a Python version"),
])  # fmt: skip
def test_unknown_machines_get_one_line(args, words):
    r = CliRunner().invoke(main, ["stack", *args])
    assert r.exit_code == 2 and r.stdout == "" and len(r.stderr.splitlines()) == 1
    assert words in r.stderr


def test_every_row_follows_the_release_naming_and_its_status_rules():
    for os_name in stack.OS_RELEASES:
        for arch in stack.ARCHES:
            for minor in (9, 10, 11, 12, 13):
                for flavour in ("std", "max"):
                    for exp in (False, True):
                        s = stack.choose(os_name, arch, f"3.{minor}", flavour, exp)
                        assert s.status in stack.STATUSES and s.why
                        if s.status == "unsupported":
                            continue
                        lib, it = s.libedgetpu, s.interpreter
                        assert lib["package"] == f"libedgetpu1-{flavour}"
                        if lib["url"].startswith("https://github.com/"):
                            m = DEB.match(lib["url"])
                            assert m and m.group(1) == m.group(3) == lib["tf"]
                            assert m.group(2) == flavour and m.group(5) == arch
                            if m.group(4) == "trixie":  # feranick builds trixie from 2.18.1 on
                                assert tuple(map(int, lib["tf"].split("."))) >= (2, 18, 1)
                        if s.status in ("proven", "documented"):
                            assert lib["tf"] == it["tf"], s  # the whole point
                        if it["source"].endswith(".whl"):
                            tag = "cp" + s.venv_python.replace(".", "")
                            assert (
                                f"-{tag}-{tag}-linux_{stack.WHEEL_ARCH[arch]}.whl" in it["source"]
                            )
                            assert f"/v{it['version']}/" in it["source"]


def test_pair_rules():
    assert stack.libedgetpu_tf("16.0tf2.17.1-1") == "2.17.1"
    assert stack.libedgetpu_tf("16.0") == "2.5.0"  # Google's build
    assert stack.interpreter_tf("tflite_runtime", "2.17.1") == "2.17.1"
    assert stack.interpreter_tf("ai_edge_litert", "2.1.2") == "2.21-dev"
    assert stack.interpreter_tf("ai_edge_litert", "2.3.0") == "2.22-dev"
    assert stack.pair_status("2.17.1", "2.17.1")[0] == "match"
    status, why = stack.pair_status("2.5.0", "2.17.1")
    assert status == "crash" and "segfaults" in why
    assert stack.pair_status("2.5.0", "2.5.0")[0] == "match"
    assert stack.pair_status("2.19.1", "2.21-dev")[0] == "untested"
    assert stack.required_runtime("16.0.384591198") == 14
    assert stack.required_runtime("16.0.384591198", 13) == 13
    assert stack.required_runtime(None) is None


def test_this_machine_reads_os_release(tmp_path):
    f = tmp_path / "os-release"
    f.write_text('PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nVERSION_CODENAME=trixie\n')
    os_name, arch, py = stack.this_machine(str(f))
    assert os_name == "trixie" and py == f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert arch in stack.ARCHES


def test_stack_module_runs_with_the_standard_library_only():
    """setup-pi.sh evaluates `python3 -m edgekit.edgetpu.stack` before anything is installed."""
    code = (
        "import sys, runpy; sys.modules['click'] = None; "
        "runpy.run_module('edgekit.edgetpu.stack', run_name='__main__')"
    )
    args = ["--os", "bookworm", "--arch", "arm64", "--python", "3.11"]
    p = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                       timeout=60)  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "STACK_STATUS=proven" in p.stdout and "LIB_TF=2.17.1" in p.stdout


# -- scripts/setup-pi.sh --dry-run --------------------------------------------------------------


def setup(*args, dpkg_status: str | None = None, tmp_path: Path | None = None):
    env = {**os.environ}
    if dpkg_status is not None:
        admin = tmp_path / "dpkg"
        (admin / "info").mkdir(parents=True)
        (admin / "updates").mkdir()
        (admin / "status").write_text(dpkg_status)
        env["DPKG_ADMINDIR"] = str(admin)
    p = subprocess.run(["bash", str(SETUP), "--dry-run", "--venv", "/nonexistent/venv", *args],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120,
                       env=env)  # fmt: skip
    return p.returncode, p.stdout


MACHINES = [
    ("bookworm", "arm64", "3.11", []),
    ("bookworm", "arm64", "3.12", ["--max"]),
    ("trixie", "arm64", "3.13", []),
    ("trixie", "arm64", "3.13", ["--experimental"]),
    ("bullseye", "armhf", "3.9", []),
    ("bookworm", "amd64", "3.11", []),
]


@pytest.mark.parametrize("os_name, arch, py, extra", MACHINES)
def test_setup_plans_exactly_what_stack_says(os_name, arch, py, extra):
    machine = ["--os", os_name, "--arch", arch, "--python", py]
    code, d, _ = stack_json(*machine, *extra)
    assert code == 0
    rc, out = setup(*machine, *extra)
    assert rc == 0, out
    assert "apt-key add" not in out and "apt-key" not in out.replace("apt-key.gpg", "")
    lib, it = d["libedgetpu"], d["interpreter"]
    if " " not in lib["url"]:  # a .deb from a release (else an apt source line)
        assert f"curl -fL --retry 3 -o /var/cache/edgekit/{lib['url'].rsplit('/', 1)[1]}" in out
        assert "+ dpkg -i" in out and lib["url"] in out
    else:  # Coral's apt repository, its key in a keyring of its own
        assert (
            "signed-by=" in out and f"apt-get install -y {lib['package']}={lib['version']}" in out
        )
    if it["source"].endswith(".whl"):
        assert it["source"] in out and re.search(r"pip install [^\n]*/var/cache/edgekit/", out)
    else:
        assert f"pip install {it['package']}=={it['version']}" in out or (
            f"{it['package']}=={it['version']}" in out
        )
    # never an unpinned interpreter, and no second interpreter left beside it
    assert not re.search(r"pip install[^\n]*(ai-edge-litert|tflite-runtime)(>=|\s|$)", out)
    # tflite_runtime needs numpy 1, for the interpreter and everything installed after it
    pinned = "--constraint /var/lib/edgekit/constraints.txt" in out
    assert pinned == (it["package"] == "tflite-runtime")
    if pinned:
        assert "echo 'numpy<2' > /var/lib/edgekit/constraints.txt" in out
        assert out.count("--constraint /var/lib/edgekit/constraints.txt") == 2
    other = "ai-edge-litert" if it["package"] == "tflite-runtime" else "tflite-runtime"
    assert f"pip uninstall -y {other}" in out and "[pi]" in out
    assert ("debconf-set-selections" in out) == ("--max" in extra)
    if "--max" in extra:
        assert "libedgetpu1-max libedgetpu/accepted-eula boolean true" in out
    assert out.rstrip().splitlines()[-2].endswith("edgekit doctor")
    if os_name == "trixie" and "--experimental" not in extra:
        assert "uv==0.13.8" in out and "uv python install 3.11" in out


def test_setup_refuses_an_unsupported_machine():
    rc, out = setup("--os", "bookworm", "--arch", "armhf", "--python", "3.11")
    assert rc == 1 and "unsupported" in out and "64-bit" in out and "+ " not in out


def test_setup_rejects_unknown_input():
    assert setup("--os", "hamm", "--arch", "arm64", "--python", "3.11")[0] == 2
    rc, out = setup("--bogus")
    assert rc == 2 and "unknown option" in out
    rc, out = setup("--offline", "/nonexistent/dir")
    assert rc == 2 and "not a directory" in out


def test_setup_replaces_a_mismatched_libedgetpu_and_keeps_a_right_one(tmp_path):
    google = ("Package: libedgetpu1-std\nStatus: install ok installed\nArchitecture: arm64\n"
              "Version: 16.0\n\n")  # fmt: skip
    machine = ("--os", "bookworm", "--arch", "arm64", "--python", "3.11")
    rc, out = setup(*machine, dpkg_status=google, tmp_path=tmp_path / "a")
    assert rc == 0 and "replacing libedgetpu1-std=16.0" in out
    assert "+ apt-get remove -y libedgetpu1-std\n" in out and "+ dpkg -i" in out
    right = google.replace("Version: 16.0", "Version: 16.0tf2.17.1-1")
    rc, out = setup(*machine, dpkg_status=right, tmp_path=tmp_path / "b")
    assert rc == 0 and "already installed: libedgetpu1-std 16.0tf2.17.1-1" in out
    assert "+ dpkg -i" not in out and "apt-get remove" not in out


def test_setup_offline_uses_only_the_given_folder(tmp_path):
    rc, out = setup("--os", "trixie", "--arch", "arm64", "--python", "3.13", "--offline",
                    str(tmp_path))  # fmt: skip
    assert rc == 0, out
    assert "curl" not in out and "apt-get update" not in out
    assert f"dpkg -i --ignore-depends=libgcc1 {tmp_path}/libedgetpu1-std_" in out
    assert f"--no-index --find-links {tmp_path}" in out
