# MinIO in place of the stack's S3-compatible store, where images can be pulled
# (deploy/compose.minio.yaml builds this instead of deploy/Dockerfile's `store` target).
FROM minio/minio AS minio
CMD ["server", "/data", "--address", ":9000"]
