"""``edgekit keygen``, ``sign``, ``verify``: signed bundles (edgekit.signing)."""

from __future__ import annotations

import click

from edgekit.cli.common import echo_json


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
@click.option("--key", "keyfile", required=True, type=click.Path(dir_okay=False),
              help="Private key from `edgekit keygen`.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def sign(bundle, keyfile, as_json):
    """Sign every file of BUNDLE: writes BUNDLE/edgekit.sig."""
    from edgekit import signing

    s = signing.sign(bundle, keyfile)
    out = {"bundle": str(s.bundle), "sha256": s.digest, "files": s.files,
           "fingerprint": s.fingerprint}  # fmt: skip
    if as_json:
        echo_json(out)
        return
    click.echo(f"signed {s.bundle} ({s.files} files) with {s.fingerprint}\nsha256 {s.digest}")


@click.command("verify")
@click.argument("bundle", type=click.Path(file_okay=False))
@click.option("--public-key", required=True, metavar="KEY",
              help="The .pub file (or its text) that must have signed BUNDLE.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def verify(bundle, public_key, as_json):
    """Check that BUNDLE is signed by the key and unchanged since (exit 1 if not)."""
    from edgekit import signing

    s = signing.verify(bundle, public_key)
    if as_json:
        echo_json({"bundle": str(s.bundle), "ok": True, "sha256": s.digest, "files": s.files,
                   "fingerprint": s.fingerprint})  # fmt: skip
        return
    click.echo(f"OK: {s.bundle} signed by {s.fingerprint} ({s.files} files)\nsha256 {s.digest}")
