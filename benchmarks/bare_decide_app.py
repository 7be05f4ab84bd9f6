"""The ceiling for decisions: a bare FastAPI endpoint that parses the request and returns a
constant decision of the same shape and size as ``POST /v1/decide`` does."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request, Response

app = FastAPI()
ANSWER = orjson.dumps(
    {
        "decisions": [
            {
                "placement": "home_hero",
                "decision_id": "d_" + "0" * 32,
                "content": {
                    "key": "offer_20",
                    "type": "banner",
                    "version": 1,
                    "fields": {"headline": "Hello there, this is offer 20", "url": "/offers/20"},
                },
                "variant": "web",
                "policy": "rules",
                "propensity": 1.0,
                "reasons": [{"type": "rule", "message": "rule 'r20' matched", "rule": "r20"}],
            }
        ]
    }
)


@app.get("/health")
def health() -> dict[str, Any]:
    return {"status": "ok"}


@app.post("/v1/decide")
async def decide(request: Request) -> Response:
    orjson.loads(await request.body())
    return Response(ANSWER, media_type="application/json")
