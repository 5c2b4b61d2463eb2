"""Where the local service keeps its files under a project root (``<root>/local/...``, ``<root>/s3/...``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from smspark_assets import environment


@dataclass(frozen=True)
class LocalLayout:
    """The files of one local stack. ``root`` is the project root (``.smspark`` by default)."""

    root: Path

    @classmethod
    def for_root(cls, root: Path | str | None = None) -> "LocalLayout":
        return cls(Path(root).expanduser().resolve() if root is not None else environment.project_root())

    @property
    def local_dir(self) -> Path:
        return self.root / "local"

    @property
    def s3_root(self) -> Path:
        """The local object store: ``s3://b/k`` lives at ``s3_root/b/k``."""
        return self.root / "s3"

    @property
    def state_db(self) -> Path:
        return self.local_dir / "state.sqlite"

    @property
    def service_json(self) -> Path:
        return self.local_dir / "service.json"

    @property
    def last_port(self) -> Path:
        """The port the service last listened on: reused on the next start when free, so URLs stay valid."""
        return self.local_dir / "service.port"

    @property
    def start_lock(self) -> Path:
        return self.local_dir / "service.lock"

    @property
    def service_log(self) -> Path:
        return self.local_dir / "service.log"

    @property
    def credentials_json(self) -> Path:
        """The generated access key and secret of this root (0600): every request must be signed with them."""
        return self.local_dir / "credentials.json"

    @property
    def actions_log(self) -> Path:
        """One JSON line per action served (service, action, caller's access key): read by the IAM tests."""
        return self.local_dir / "actions.jsonl"

    @property
    def dynamodb_snapshot(self) -> Path:
        return self.local_dir / "dynamodb.pickle"

    @property
    def training_jobs_dir(self) -> Path:
        return self.local_dir / "training-jobs"

    def training_job_dir(self, name: str) -> Path:
        return self.training_jobs_dir / name

    def training_log(self, name: str) -> Path:
        return self.training_job_dir(name) / "training.log"

    @property
    def transform_jobs_dir(self) -> Path:
        return self.local_dir / "transform-jobs"

    @property
    def endpoints_dir(self) -> Path:
        return self.local_dir / "endpoints"

    @property
    def config_json(self) -> Path:
        """Optional user configuration of the local service (custom images, concurrency)."""
        return self.local_dir / "config.json"

    def s3_path(self, uri: str) -> Path:
        """The store's file for ``uri``; ``ValueError`` for a bucket name S3 refuses (``..``) or a key leaving it."""
        from smspark_assets.local.s3_names import bucket_name_problem

        bucket, _key = environment.split_s3_uri(uri)
        problem = bucket_name_problem(bucket)
        if problem:
            raise ValueError(f"{uri!r}: {problem}")
        return environment.local_path(uri, root=self.s3_root)
