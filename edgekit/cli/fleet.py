"""``edgekit keygen``, ``sign``, ``verify``: signed bundles (edgekit.signing)."""

from __future__ import annotations

import click

from edgekit.cli.common import echo_json
from edgekit.cli.params import Finite


@click.command("keygen")
@click.argument("keyfile", type=click.Path(dir_okay=False))
@click.option(
    "--force", is_flag=True, help="Replace an existing key (devices trusting it lose it)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def keygen(keyfile, force, as_json):
    """Create an Ed25519 signing key: KEYFILE (private, mode 0600) and KEYFILE.pub.

    Keep KEYFILE on the machine that signs bundles; put KEYFILE.pub (or its one line) in each
    device's [fleet] public_key.
    """
    from edgekit import signing

    priv, pub, fp = signing.keygen(keyfile, force=force)
    if as_json:
        echo_json({"private_key": str(priv), "public_key": str(pub), "fingerprint": fp})
        return
    click.echo(f"private key {priv} (keep it secret)\npublic key  {pub}\nfingerprint {fp}")


@click.command("sign")
@click.argument("bundle", type=click.Path(file_okay=False))
@click.option(
    "--key",
    "keyfile",
    required=True,
    type=click.Path(dir_okay=False),
    help="Private key from `edgekit keygen`.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def sign(bundle, keyfile, as_json):
    """Sign every file of BUNDLE: writes BUNDLE/edgekit.sig."""
    from edgekit import signing

    s = signing.sign(bundle, keyfile)
    out = {
        "bundle": str(s.bundle),
        "sha256": s.digest,
        "files": s.files,
        "fingerprint": s.fingerprint,
    }
    if as_json:
        echo_json(out)
        return
    click.echo(f"signed {s.bundle} ({s.files} files) with {s.fingerprint}\nsha256 {s.digest}")


@click.command("verify")
@click.argument("bundle", type=click.Path(file_okay=False))
@click.option(
    "--public-key",
    required=True,
    metavar="KEY",
    help="The .pub file (or its text) that must have signed BUNDLE.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def verify(bundle, public_key, as_json):
    """Check that BUNDLE is signed by the key and unchanged since (exit 1 if not)."""
    from edgekit import signing

    s = signing.verify(bundle, public_key)
    if as_json:
        echo_json(
            {
                "bundle": str(s.bundle),
                "ok": True,
                "sha256": s.digest,
                "files": s.files,
                "fingerprint": s.fingerprint,
            }
        )
        return
    click.echo(f"OK: {s.bundle} signed by {s.fingerprint} ({s.files} files)\nsha256 {s.digest}")


WEEK_S = 7 * 86400.0


@click.command("rollout")
@click.argument("bundle", type=click.Path(file_okay=False))
@click.option("--broker", required=True, metavar="HOST:PORT", help="The devices' [mqtt] broker.")
@click.option("--topic", required=True, help="The devices' [fleet] topic.")
@click.option(
    "--canary",
    type=click.IntRange(0, 1_000_000),
    default=1,
    show_default=True,
    help="Devices that get the bundle first (0: all at once).",
)
@click.option(
    "--wait",
    "wait_s",
    type=Finite(0.0, WEEK_S),
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="Canaries must keep producing results this long.",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=Finite(1.0, WEEK_S),
    default=120.0,
    show_default=True,
    metavar="SECONDS",
    help="Longest wait for a device to report after it was sent the bundle.",
)
@click.option("--username", default="", help="Broker user name (as [mqtt] username).")
@click.option(
    "--password",
    default="",
    envvar="EDGEKIT_MQTT_PASSWORD",
    help="Broker password (or $EDGEKIT_MQTT_PASSWORD).",
)
@click.option("--tls", is_flag=True, help="Connect with TLS (the system's CA certificates).")
@click.option(
    "--cafile",
    type=click.Path(dir_okay=False),
    default=None,
    help="CA certificate for TLS (implies --tls).",
)
@click.option(
    "--serve-http",
    metavar="ADDRESS:PORT",
    default="",
    help="Serve the bundle over HTTP at an address the devices reach and send them the "
    "URL + sha256 (for bundles too large for one MQTT message).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of the table.")
def rollout(
    bundle,
    broker,
    topic,
    canary,
    wait_s,
    timeout_s,
    username,
    password,
    tls,
    cafile,
    serve_http,
    as_json,
):
    """Ship a signed BUNDLE to the serve processes under a fleet topic, safely.

    Canaries first: they must deploy it and keep producing results for --wait seconds; then the
    rest. Any failure stops the rollout and sends the devices that took the bundle back to the
    one they ran before. Progress per device on stderr, then a table (exit 1 if it stopped).
    """
    from edgekit.errors import EdgekitError
    from edgekit.rollout import rollout as run_rollout
    from edgekit.stream.http import parse_listen

    try:
        host, port = parse_listen(broker, default_host="localhost")
    except EdgekitError:  # parse_listen speaks of an HTTP address: this is the MQTT broker's
        raise EdgekitError(f"--broker {broker!r}: not HOST:PORT with a port 1-65535",
                           "e.g. mqtt.local:1883 or [fd00::5]:1883") from None  # fmt: skip
    result = run_rollout(
        bundle,
        host,
        port,
        topic,
        canary=canary,
        wait_s=wait_s,
        timeout_s=timeout_s,
        username=username,
        password=password,
        tls=tls,
        ca_file=cafile or "",
        serve_http=serve_http,
        progress=lambda line: click.echo(line, err=True),
    )
    if as_json:
        echo_json(result.to_dict())
    else:
        click.echo(_table(result))
    if result.interrupted:  # after the table, which says what each device runs now
        click.echo(f"Error: {_interrupted(result)}", err=True)
        click.get_current_context().exit(128 + result.interrupted)
    if not result.ok:
        why = result.stopped or "not every device deployed it"
        raise EdgekitError(
            f"rollout of {result.sha256[:12]} stopped: {why}",
            "see the table; devices that took it were rolled back",
        )


def _interrupted(result) -> str:
    """One line: what an interrupted rollout left behind (the table has every device)."""
    unsure = ("not rolled back", "rollback unconfirmed", "rollback failed")
    back = [d.device for d in result.devices if d.state == "rolled back"]
    left = [f"{d.device} runs {d.after[:12] or '?'}" for d in result.devices
            if d.state in unsure or (d.group and d.after == result.sha256)]  # fmt: skip
    said = [f"rolled back {', '.join(back)}"] if back else []
    if left:
        said.append(f"NOT rolled back: {', '.join(left)}")
    return f"rollout of {result.sha256[:12]} {result.stopped}: " + (
        "; ".join(said) or "no device had switched")


def _table(result) -> str:
    head = ("DEVICE", "GROUP", "BEFORE", "AFTER", "STATE", "TIME", "MESSAGE")
    rows = [
        (
            d.device,
            d.group or "-",
            d.before[:12] or "-",
            d.after[:12] or "-",
            d.state,
            "-" if d.seconds is None else f"{d.seconds:.1f} s",
            d.message,
        )
        for d in result.devices
    ]
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head) - 1)]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(r[:-1], widths)) + "  " + r[-1]
        for r in [head, *rows]
    ]
    verdict = "OK" if result.ok else "STOPPED"
    offline = sum(d.state == "offline" for d in result.devices)
    if offline:
        verdict += f" ({offline} offline, not sent)"
    lines.append(
        f"{verdict}: {result.sha256[:12]} ({result.transport}) "
        f"{sum(d.state == 'deployed' for d in result.devices)} deployed"
    )
    return "\n".join(line.rstrip() for line in lines)
