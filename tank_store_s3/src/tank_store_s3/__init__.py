"""Tank's S3 store: image data in an S3 bucket (AWS S3, Ceph RGW, Swift s3api, ...)."""

from tank_store_s3.backend import S3Backend

__all__ = ["S3Backend"]
