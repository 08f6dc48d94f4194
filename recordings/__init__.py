"""Call recordings in S3-compatible object storage (AWS S3, MinIO): a SigV4 client and the uploader."""
