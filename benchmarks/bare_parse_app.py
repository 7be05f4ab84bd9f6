"""The ceiling for ingestion: a bare FastAPI endpoint that only parses the same batches."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request, Response

app = FastAPI()


@app.get("/health")
def health() -> dict[str, Any]:
    return {"status": "ok"}


@app.post("/v1/batch")
async def batch(request: Request) -> Response:
    body = orjson.loads(await request.body())
    return Response(
        orjson.dumps({"success": True, "received": len(body["batch"])}),
        media_type="application/json",
    )
