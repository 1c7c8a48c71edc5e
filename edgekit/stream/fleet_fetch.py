"""Download a bundle archive for a fleet deploy: http(s) only (redirects too), a size cap checked
before and while reading, and an overall deadline (a socket timeout alone lets a server that
trickles one byte a second hold the device forever)."""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request

from edgekit.errors import EdgekitError

SCHEMES = ("http", "https")


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urllib.parse.urlsplit(newurl).scheme.lower() not in SCHEMES:
            raise EdgekitError(f"redirect to {newurl!r} refused (http and https only)")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch(url: str, max_bytes: int, timeout_s: float) -> bytes:
    """The body at ``url``; EdgekitError for another scheme, an HTTP error, more than
    ``max_bytes`` or more than ``timeout_s`` seconds in all."""
    if urllib.parse.urlsplit(url).scheme.lower() not in SCHEMES:
        raise EdgekitError(f"{url!r}: only http:// and https:// URLs are fetched")
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(),
        _HttpOnlyRedirects(),
        urllib.request.HTTPErrorProcessor(),
        urllib.request.HTTPDefaultErrorHandler(),
    ):
        opener.add_handler(handler)
    deadline = time.monotonic() + timeout_s
    try:
        with opener.open(url, timeout=min(timeout_s, 30.0)) as resp:
            length = resp.headers.get("Content-Length")
            if length is not None and length.isdigit() and int(length) > max_bytes:
                raise EdgekitError(f"{url}: {length} bytes is over the {max_bytes}-byte limit")
            chunks, total = [], 0
            while True:
                if time.monotonic() > deadline:
                    raise EdgekitError(f"{url}: not downloaded within {timeout_s:g} s")
                block = resp.read(min(1 << 16, max_bytes + 1 - total))
                if not block:
                    break
                chunks.append(block)
                total += len(block)
                if total > max_bytes:
                    raise EdgekitError(f"{url}: larger than the {max_bytes}-byte limit")
    except urllib.error.HTTPError as e:
        raise EdgekitError(f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise EdgekitError(f"{url}: cannot download ({reason})") from None
    return b"".join(chunks)
