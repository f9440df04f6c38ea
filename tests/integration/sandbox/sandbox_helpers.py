"""HTTP clients for the sandbox's two servers, for its own tests."""

from __future__ import annotations

import httpx


def canvas_client(sb, token: str | None = None) -> httpx.Client:
    """``token``: None for the sandbox's own, "" for no Authorization header at all."""
    token = sb.canvas_token if token is None else token
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=sb.canvas_url, headers=headers, trust_env=False, timeout=30)


def aspen_token(sb) -> str:
    r = httpx.post(
        f"{sb.aspen_url}{sb.aspen_token_path}",
        trust_env=False,
        timeout=30,
        data={
            "grant_type": "client_credentials",
            "client_id": sb.aspen_client_id,
            "client_secret": sb.aspen_client_secret,
        },
    )
    r.raise_for_status()
    return r.json()["access_token"]


def aspen_client(sb, token: str | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=f"{sb.aspen_url}{sb.aspen_api_path}",
        trust_env=False,
        timeout=30,
        headers={"Authorization": f"Bearer {token or aspen_token(sb)}"},
    )


def follow(client: httpx.Client, url: str, params=None) -> tuple[list, int]:
    """Every item of a Canvas list, following rel="next"; also the number of pages."""
    items, pages = [], 0
    response = client.get(url, params=params)
    while True:
        response.raise_for_status()
        items += response.json()
        pages += 1
        nxt = response.links.get("next", {}).get("url")
        if not nxt:
            return items, pages
        response = client.get(nxt)
