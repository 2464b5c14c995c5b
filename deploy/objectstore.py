"""The stack's S3-compatible object store: moto's S3 server, with the artifact bucket made.

MinIO is neither a Debian nor a PyPI package, so where images cannot be pulled the stack runs
moto's server (``moto[server]`` from PyPI), which speaks the S3 API that s3fs uses. It keeps
objects in memory: enough to exercise ``ARTIFACTS_DIR=s3://…`` end to end, not a store to keep
artifacts in. Where images can be pulled, ``deploy/compose.minio.yaml`` puts MinIO in its place.
"""

from __future__ import annotations

import os
import signal
import threading

import boto3
from moto.server import ThreadedMotoServer

PORT = int(os.environ.get("STORE_PORT", "9000"))
BUCKETS = [b for b in os.environ.get("STORE_BUCKETS", "planwise-artifacts").split(",") if b]


def main() -> None:
    server = ThreadedMotoServer(ip_address="0.0.0.0", port=PORT, verbose=False)
    server.start()
    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{PORT}",
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "planwise"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "planwise"),
    )
    for bucket in BUCKETS:
        client.create_bucket(Bucket=bucket)
    print(f"S3-compatible store on :{PORT}, buckets {', '.join(BUCKETS)}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
