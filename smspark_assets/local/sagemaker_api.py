"""The SageMaker control plane of the local service: one method per operation, AWS-shaped results and errors.

Requests arrive as the JSON botocore sends (``X-Amz-Target: SageMaker.<Operation>``) and answers are the
Describe/List shapes of botocore's service model, with timestamps as epoch seconds. Everything a
request creates is validated first, so a refused request leaves nothing behind.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from pathlib import Path
from typing import Any, Callable

from smspark_assets import environment
from smspark_assets.local.algorithm_lookup import AlgorithmRef, load_algorithm, resolve_image
from smspark_assets.local.s3_names import bucket_name_problem
from smspark_assets.local.api_errors import ApiError, in_use, not_found, validation
from smspark_assets.local.deployment_capture import check_capture_config
from smspark_assets.local.deployment_config import plan_for
from smspark_assets.local.deployment_serverless import check_serverless_config
from smspark_assets.local.endpoints import ACCOUNT, EndpointManager
from smspark_assets.local.layout import LocalLayout
from smspark_assets.local.process_environment import CONTAINER_LIMITS, TRAINING_LIMITS, check_environment
from smspark_assets.local.state import AlreadyExists, NotFound, StateStore
from smspark_assets.local.training import TrainingRunner, transition
from smspark_assets.sagemaker.errors import HyperparameterError

NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
CHANNEL_RE = re.compile(r"^[A-Za-z0-9\.\-_]+$")
DEFAULT_MAX_RUNTIME = 86400
MAX_VARIANTS = 10

TRAINING_STATUSES = ("InProgress", "Completed", "Failed", "Stopping", "Stopped")
ENDPOINT_STATUSES = (
    "OutOfService",
    "Creating",
    "Updating",
    "SystemUpdating",
    "RollingBack",
    "InService",
    "Deleting",
    "Failed",
    "UpdateRollbackFailed",
)


def _require(params: dict[str, Any], *path: str) -> Any:
    """The value at ``path`` or a ValidationException naming the missing member, as botocore/AWS do."""
    value: Any = params
    for i, key in enumerate(path):
        if not isinstance(value, dict) or value.get(key) in (None, ""):
            raise validation(
                f"1 validation error detected: Value null at '{'.'.join(path[: i + 1])}' "
                "failed to satisfy constraint: Member must not be null"
            )
        value = value[key]
    return value


def _check_name(value: str, member: str) -> None:
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise validation(
            f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: "
            f"Member must satisfy regular expression pattern: {NAME_RE.pattern} "
            "(1-63 letters, digits and hyphens; no leading, trailing or double hyphens)"
        )


def _check_s3_uri(value: Any, member: str) -> str:
    """An S3 URI whose bucket follows S3's naming rules (so never ``..``) and whose key stays in its bucket."""
    try:
        bucket, _key = environment.split_s3_uri(str(value))
        problem = bucket_name_problem(bucket)
        if problem:
            raise ValueError(problem)
        # also refuses keys with ".." that would leave their bucket in the local object store
        environment.local_path(str(value), root=Path("/"))
    except ValueError as exc:
        raise validation(
            f"Value '{value}' at '{member}' is not a valid S3 URI ({exc}); expected s3://<bucket>/<key>"
        ) from None
    return str(value)


def _check_enum(value: Any, member: str, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        raise validation(
            f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: "
            f"Member must satisfy enum value set: [{', '.join(allowed)}]"
        )


def _check_tags(tags: Any) -> list[dict[str, str]]:
    tags = tags or []
    if not isinstance(tags, list) or len(tags) > 50:
        raise validation("Tags must be a list of at most 50 {Key, Value} objects")
    for tag in tags:
        key = tag.get("Key") if isinstance(tag, dict) else None
        if not key or len(key) > 128 or key.startswith("aws:"):
            raise validation(
                f"Tag key {key!r} is not allowed: keys are 1-128 characters and may not start with 'aws:'"
            )
        if len(str(tag.get("Value", ""))) > 256:
            raise validation(f"Tag value of {key!r} is longer than 256 characters")
    return tags


class _Pager:
    """Opaque NextToken paging over a sorted, filtered list.

    The token names the last item returned (and its offset, used only if that item is gone since), so
    resources created between two pages neither repeat an item nor shift the following pages.
    """

    @staticmethod
    def page(
        items: list[dict[str, Any]],
        params: dict[str, Any],
        default_size: int = 10,
        max_size: int = 100,
        name_key: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        size = params.get("MaxResults", default_size)
        if not isinstance(size, int) or not 1 <= size <= max_size:
            raise validation(
                f"1 validation error detected: Value '{size}' at 'maxResults' failed to satisfy "
                f"constraint: Member must have value between 1 and {max_size}"
            )
        start = 0
        token = params.get("NextToken")
        if token:
            try:
                cursor = json.loads(base64.urlsafe_b64decode(token.encode()))
                start = int(cursor["offset"])
                after = cursor.get("after")
            except (ValueError, KeyError, TypeError):
                raise validation(
                    "Invalid pagination token: pass the NextToken of a previous response"
                ) from None
            if name_key and after is not None:
                for index, item in enumerate(items):
                    if item[name_key] == after:
                        start = index + 1
                        break
        chunk = items[start:start + size]
        nxt = start + len(chunk)
        next_token = None
        if nxt < len(items) and chunk:
            cursor = {"offset": nxt, "after": chunk[-1][name_key] if name_key else None}
            next_token = base64.urlsafe_b64encode(json.dumps(cursor).encode()).decode()
        return chunk, next_token


def _filter_and_sort(
    docs: list[dict[str, Any]],
    params: dict[str, Any],
    name_key: str,
    status_key: str | None,
    statuses: tuple[str, ...],
    sort_keys: dict[str, str],
) -> list[dict[str, Any]]:
    _check_enum(params.get("SortOrder"), "sortOrder", ("Ascending", "Descending"))
    _check_enum(params.get("SortBy"), "sortBy", tuple(sort_keys))
    if status_key:
        _check_enum(params.get("StatusEquals"), "statusEquals", statuses)
    contains = (params.get("NameContains") or "").lower()
    out = []
    for doc in docs:
        if contains and contains not in doc[name_key].lower():
            continue
        if status_key and params.get("StatusEquals") and doc.get(status_key) != params["StatusEquals"]:
            continue
        created = doc.get("CreationTime", 0)
        modified = doc.get("LastModifiedTime", created)
        if "CreationTimeAfter" in params and not created > float(params["CreationTimeAfter"]):
            continue
        if "CreationTimeBefore" in params and not created < float(params["CreationTimeBefore"]):
            continue
        if "LastModifiedTimeAfter" in params and not modified > float(params["LastModifiedTimeAfter"]):
            continue
        if "LastModifiedTimeBefore" in params and not modified < float(params["LastModifiedTimeBefore"]):
            continue
        out.append(doc)
    key = sort_keys[params.get("SortBy") or "CreationTime"]
    descending = (params.get("SortOrder") or "Descending") == "Descending"
    # Ties broken by name so that paging is stable.
    out.sort(key=lambda d: (d.get(key) or "", d[name_key]), reverse=descending)
    return out


class SageMakerApi:
    """Implements the SageMaker operations the local service supports."""

    def __init__(
        self,
        layout: LocalLayout,
        store: StateStore,
        training: TrainingRunner,
        endpoints: EndpointManager,
        custom_images: Callable[[], dict[str, str]] = dict,
    ) -> None:
        self.layout = layout
        self.store = store
        self.training = training
        self.endpoints = endpoints
        self.custom_images = custom_images
        self.region = environment.region()
        self._ops: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            name: getattr(self, _snake(name)) for name in self.operations()
        }
        self.transforms: Any = None  # set by the service once batch transform is available
        # Model registry and hyperparameter tuning: their own modules, dispatched from here.
        from smspark_assets.local.model_registry import ModelRegistry
        from smspark_assets.local.tuning import TuningApi

        self.registry = ModelRegistry(self)
        self.tuning = TuningApi(self)
        self._ops.update(self.registry.operations())
        self._ops.update(self.tuning.operations())

    @staticmethod
    def operations() -> list[str]:
        return [
            "CreateTrainingJob",
            "DescribeTrainingJob",
            "ListTrainingJobs",
            "StopTrainingJob",
            "CreateModel",
            "DescribeModel",
            "DeleteModel",
            "ListModels",
            "CreateEndpointConfig",
            "DescribeEndpointConfig",
            "DeleteEndpointConfig",
            "ListEndpointConfigs",
            "CreateEndpoint",
            "DescribeEndpoint",
            "DeleteEndpoint",
            "ListEndpoints",
            "UpdateEndpoint",
            "UpdateEndpointWeightsAndCapacities",
            "AddTags",
            "ListTags",
            "DeleteTags",
        ]

    def dispatch(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        handler = self._ops.get(operation)
        if handler is None and self.transforms is not None:
            handler = self.transforms.operations().get(operation)
        if handler is None:
            raise ApiError(
                "UnknownOperationException",
                f"The local SageMaker service does not implement {operation}; it implements: "
                f"{', '.join(sorted(self._ops))}",
            )
        if not isinstance(params, dict):
            raise ApiError("SerializationException", "the request body must be a JSON object")
        return handler(params)

    def arn(self, kind: str, name: str) -> str:
        # SageMaker lower-cases resource names in ARNs.
        return f"arn:aws:sagemaker:{self.region}:{ACCOUNT}:{kind}/{name.lower()}"

    def _resolve(self, image: str, member: str) -> AlgorithmRef:
        try:
            return resolve_image(image, self.custom_images())
        except ValueError as exc:
            raise validation(
                f"Value '{image}' at '{member}' is not an image the local service can run: {exc}"
            ) from None

    # -- training jobs ----------------------------------------------------------------------------------

    def create_training_job(self, p: dict[str, Any]) -> dict[str, Any]:
        name = _require(p, "TrainingJobName")
        _check_name(name, "trainingJobName")
        _require(p, "RoleArn")
        spec = _require(p, "AlgorithmSpecification")
        if spec.get("AlgorithmName") and not spec.get("TrainingImage"):
            raise validation(
                "AlgorithmSpecification.AlgorithmName (algorithm resources and Marketplace algorithms) "
                "is not supported locally; give AlgorithmSpecification.TrainingImage"
            )
        image = _require(p, "AlgorithmSpecification", "TrainingImage")
        _check_enum(
            spec.get("TrainingInputMode", "File"),
            "algorithmSpecification.trainingInputMode",
            ("Pipe", "File", "FastFile"),
        )
        output_path = _check_s3_uri(
            _require(p, "OutputDataConfig", "S3OutputPath"), "outputDataConfig.s3OutputPath"
        )
        channels = p.get("InputDataConfig") or []
        if len(channels) > 20:
            raise validation("InputDataConfig may have at most 20 channels")
        seen: set[str] = set()
        for i, channel in enumerate(channels):
            cname = channel.get("ChannelName", "")
            if not CHANNEL_RE.match(cname or "") or len(cname) > 64:
                raise validation(
                    f"Value '{cname}' at 'inputDataConfig.{i + 1}.member.channelName' must be 1-64 "
                    "characters of letters, digits, '.', '-' and '_'"
                )
            if cname in seen:
                raise validation(
                    f"Channel names must be unique; {cname!r} appears more than once in InputDataConfig"
                )
            seen.add(cname)
            source = (channel.get("DataSource") or {}).get("S3DataSource")
            if not source:
                raise validation(
                    f"Channel {cname!r}: only DataSource.S3DataSource is supported locally "
                    "(FileSystemDataSource and DatasetSource are not)"
                )
            _check_enum(
                source.get("S3DataType"),
                f"inputDataConfig.{i + 1}.member.dataSource.s3DataSource.s3DataType",
                ("ManifestFile", "S3Prefix", "AugmentedManifestFile", "Converse"),
            )
            if source.get("S3DataType") != "S3Prefix":
                raise validation(
                    f"Channel {cname!r}: S3DataType {source.get('S3DataType')!r} is not supported "
                    "locally; allowed: S3Prefix"
                )
            _check_s3_uri(
                source.get("S3Uri"), f"inputDataConfig.{i + 1}.member.dataSource.s3DataSource.s3Uri"
            )
            _check_enum(channel.get("CompressionType"), "compressionType", ("None", "Gzip"))
        for definition in spec.get("MetricDefinitions") or []:
            try:
                re.compile(definition.get("Regex", ""))
            except re.error as exc:
                raise validation(
                    f"MetricDefinitions {definition.get('Name')!r}: Regex is not a valid regular "
                    f"expression: {exc}"
                ) from None
        # Refused before anything exists: the map reaches the worker's environment.
        check_environment(p.get("Environment"), "environment", TRAINING_LIMITS)
        hyperparameters = p.get("HyperParameters") or {}
        if not isinstance(hyperparameters, dict) or len(hyperparameters) > 100:
            raise validation("HyperParameters must be a map of at most 100 string values")
        stopping = dict(p.get("StoppingCondition") or {})
        max_runtime = stopping.setdefault("MaxRuntimeInSeconds", DEFAULT_MAX_RUNTIME)
        if not isinstance(max_runtime, int) or max_runtime < 1:
            raise validation(
                f"Value '{max_runtime}' at 'stoppingCondition.maxRuntimeInSeconds' failed to satisfy "
                "constraint: Member must have value greater than or equal to 1"
            )
        tags = _check_tags(p.get("Tags"))
        ref = self._resolve(image, "algorithmSpecification.trainingImage")
        # Bad hyperparameters are refused here, before any job exists, naming the allowed range.
        try:
            algorithm = load_algorithm(ref)
        except (ImportError, KeyError, ValueError) as exc:
            raise validation(
                f"The local implementation of {ref.algorithm!r} cannot be loaded: {exc}"
            ) from None
        try:
            algorithm.validate_hyperparameters({str(k): str(v) for k, v in hyperparameters.items()})
        except HyperparameterError as exc:
            raise validation(str(exc)) from None

        now = time.time()
        arn = self.arn("training-job", name)
        doc = {k: v for k, v in p.items() if k != "Tags"}
        doc.update(
            {
                "TrainingJobName": name,
                "TrainingJobArn": arn,
                "ModelArtifacts": {
                    "S3ModelArtifacts": f"{output_path.rstrip('/')}/{name}/output/model.tar.gz"
                },
                "TrainingJobStatus": "InProgress",
                "SecondaryStatus": "Starting",
                "HyperParameters": {str(k): str(v) for k, v in hyperparameters.items()},
                "StoppingCondition": stopping,
                "CreationTime": now,
                "LastModifiedTime": now,
                "EnableNetworkIsolation": bool(p.get("EnableNetworkIsolation", False)),
                "EnableInterContainerTrafficEncryption": bool(
                    p.get("EnableInterContainerTrafficEncryption", False)
                ),
                "EnableManagedSpotTraining": bool(p.get("EnableManagedSpotTraining", False)),
            }
        )
        doc["AlgorithmSpecification"] = {**spec, "TrainingInputMode": spec.get("TrainingInputMode", "File")}
        running = len(self.training.running())
        message = (
            "Preparing the instances for training"
            if running < self.training.max_concurrent
            else (
                f"Waiting for a free training slot ({running} jobs running, "
                f"limit {self.training.max_concurrent})"
            )
        )
        transition(doc, "Starting", message, now)
        try:
            self.store.create("training-job", name, arn, doc, status="InProgress")
        except AlreadyExists:
            raise in_use(
                f"Training job names must be unique within an AWS account and region, and a training job "
                f"with this name already exists ({arn})"
            ) from None
        if tags:
            self.store.add_tags(arn, tags)
        self.training.submit(name, ref)
        return {"TrainingJobArn": arn}

    def _training_job(self, p: dict[str, Any]) -> dict[str, Any]:
        name = _require(p, "TrainingJobName")
        doc = self.store.get("training-job", name)
        if doc is None:
            raise validation("Requested resource not found.")
        return doc

    def describe_training_job(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._training_job(p)

    def list_training_jobs(self, p: dict[str, Any]) -> dict[str, Any]:
        docs = _filter_and_sort(
            self.store.list("training-job"),
            p,
            "TrainingJobName",
            "TrainingJobStatus",
            TRAINING_STATUSES,
            {"Name": "TrainingJobName", "CreationTime": "CreationTime", "Status": "TrainingJobStatus"},
        )
        page, token = _Pager.page(docs, p, name_key="TrainingJobName")
        keys = (
            "TrainingJobName",
            "TrainingJobArn",
            "CreationTime",
            "TrainingEndTime",
            "LastModifiedTime",
            "TrainingJobStatus",
            "SecondaryStatus",
        )
        out: dict[str, Any] = {"TrainingJobSummaries": [{k: d[k] for k in keys if k in d} for d in page]}
        if token:
            out["NextToken"] = token
        return out

    def stop_training_job(self, p: dict[str, Any]) -> dict[str, Any]:
        name = _require(p, "TrainingJobName")
        doc = self.store.get("training-job", name)
        if doc is None:
            raise not_found(f"Requested resource not found: training job {name}")
        if doc["TrainingJobStatus"] != "InProgress":
            raise validation(
                f"The request was rejected because the training job is in status {doc['TrainingJobStatus']}."
            )

        def change(d: dict[str, Any]) -> None:
            d["TrainingJobStatus"] = "Stopping"
            transition(d, "Stopping", "Stopping the training job")

        self.store.update("training-job", name, change, status_key="TrainingJobStatus")
        threading.Thread(target=self.training.stop, args=(name,), daemon=True).start()
        return {}

    # -- models -----------------------------------------------------------------------------------------

    def create_model(self, p: dict[str, Any]) -> dict[str, Any]:
        name = _require(p, "ModelName")
        _check_name(name, "modelName")
        containers = [p["PrimaryContainer"]] if p.get("PrimaryContainer") else list(p.get("Containers") or [])
        if not containers:
            raise validation("Either PrimaryContainer or Containers must be given")
        # Every container's Environment is checked, the primary one and each of Containers[].
        members = [("primaryContainer", p.get("PrimaryContainer"))] + [
            (f"containers.{i + 1}.member", c) for i, c in enumerate(p.get("Containers") or [])]
        for member, given in members:
            if given is None:
                continue
            if not isinstance(given, dict):
                raise validation(f"Value at '{member}' must be a ContainerDefinition object")
            check_environment(given.get("Environment"), f"{member}.environment", CONTAINER_LIMITS)
        if len(containers) > 1:
            raise validation(
                "Inference pipelines (more than one container) are not supported locally; give one container"
            )
        container = containers[0]
        if container.get("ModelPackageName"):
            # The package's first container (Image, ModelDataUrl, Environment); versions must be Approved.
            primary = bool(p.get("PrimaryContainer"))
            container = self.registry.container_for_model(
                container, "primaryContainer" if primary else "containers.1.member")
            p = {**p, "PrimaryContainer": container} if primary else {**p, "Containers": [container]}
        image = container.get("Image")
        if not image:
            raise validation(
                "1 validation error detected: Value null at 'primaryContainer.image' failed to satisfy "
                "constraint: Member must not be null"
            )
        self._resolve(image, "primaryContainer.image")
        data_url = container.get("ModelDataUrl")
        if data_url:
            _check_s3_uri(data_url, "primaryContainer.modelDataUrl")
            if not self.layout.s3_path(data_url).is_file():
                raise validation(f"Could not find model data at {data_url}.")
        tags = _check_tags(p.get("Tags"))
        arn = self.arn("model", name)
        doc = {k: v for k, v in p.items() if k != "Tags"}
        doc.update(
            {
                "ModelName": name,
                "ModelArn": arn,
                "CreationTime": time.time(),
                "EnableNetworkIsolation": bool(p.get("EnableNetworkIsolation", False)),
            }
        )
        try:
            self.store.create("model", name, arn, doc)
        except AlreadyExists:
            raise validation(f'Cannot create already existing model "{arn}".') from None
        if tags:
            self.store.add_tags(arn, tags)
        return {"ModelArn": arn}

    def describe_model(self, p: dict[str, Any]) -> dict[str, Any]:
        name = _require(p, "ModelName")
        doc = self.store.get("model", name)
        if doc is None:
            raise validation(f"Could not find model \"{self.arn('model', name)}\".")
        return doc

    def delete_model(self, p: dict[str, Any]) -> dict[str, Any]:
        name = _require(p, "ModelName")
        try:
            self.store.delete("model", name)
        except NotFound:
            raise validation(f"Could not find model \"{self.arn('model', name)}\".") from None
        return {}

    def list_models(self, p: dict[str, Any]) -> dict[str, Any]:
        docs = _filter_and_sort(
            self.store.list("model"),
            p,
            "ModelName",
            None,
            (),
            {"Name": "ModelName", "CreationTime": "CreationTime"},
        )
        page, token = _Pager.page(docs, p, name_key="ModelName")
        out: dict[str, Any] = {
            "Models": [{k: d[k] for k in ("ModelName", "ModelArn", "CreationTime")} for d in page]
        }
        if token:
            out["NextToken"] = token
        return out

    # -- endpoint configs -------------------------------------------------------------------------------

    def create_endpoint_config(self, p: dict[str, Any]) -> dict[str, Any]:
        name = _require(p, "EndpointConfigName")
        _check_name(name, "endpointConfigName")
        variants = _require(p, "ProductionVariants")
        if not isinstance(variants, list) or not 1 <= len(variants) <= MAX_VARIANTS:
            raise validation(f"ProductionVariants must hold between 1 and {MAX_VARIANTS} variants")
        seen: set[str] = set()
        filled = []
        for i, variant in enumerate(variants):
            vname = variant.get("VariantName")
            if not vname:
                raise validation(
                    f"1 validation error detected: Value null at 'productionVariants.{i + 1}.member."
                    "variantName' failed to satisfy constraint: Member must not be null"
                )
            _check_name(vname, f"productionVariants.{i + 1}.member.variantName")
            if vname in seen:
                raise validation(
                    f"Variant names must be unique within an endpoint configuration; {vname!r} repeats"
                )
            seen.add(vname)
            model = variant.get("ModelName")
            if not model or self.store.get("model", model) is None:
                raise validation(f"Could not find model \"{self.arn('model', model or '')}\".")
            if variant.get("ServerlessConfig") is not None:
                variant = {**variant, "ServerlessConfig": check_serverless_config(
                    variant["ServerlessConfig"], f"productionVariants.{i + 1}.member.serverlessConfig")}
            else:
                count = variant.get("InitialInstanceCount")
                if not isinstance(count, int) or count < 1:
                    raise validation(
                        f"Value '{count}' at 'productionVariants.{i + 1}.member.initialInstanceCount' "
                        "failed to satisfy constraint: Member must have value greater than or equal to 1"
                    )
                if not variant.get("InstanceType"):
                    raise validation(
                        f"InstanceType is required for variant {vname!r} (or give a ServerlessConfig)"
                    )
            weight = variant.get("InitialVariantWeight", 1.0)
            if not isinstance(weight, (int, float)) or weight < 0:
                raise validation(
                    f"Value '{weight}' at 'productionVariants.{i + 1}.member.initialVariantWeight' "
                    "failed to satisfy constraint: Member must have value greater than or equal to 0"
                )
            filled.append(
                {
                    **variant,
                    "InitialVariantWeight": float(weight),
                    "InitialInstanceCount": int(variant.get("InitialInstanceCount") or 1),
                }
            )
        serverless = any(v.get("ServerlessConfig") is not None for v in filled)
        if serverless and len(filled) > 1:
            raise validation("A serverless endpoint configuration has exactly one production variant; "
                             f"this one has {len(filled)}.")
        capture = check_capture_config(p.get("DataCaptureConfig"), serverless)
        tags = _check_tags(p.get("Tags"))
        arn = self.arn("endpoint-config", name)
        doc = {k: v for k, v in p.items() if k != "Tags"}
        if capture is not None:
            doc["DataCaptureConfig"] = capture
        doc.update(
            {
                "EndpointConfigName": name,
                "EndpointConfigArn": arn,
                "ProductionVariants": filled,
                "CreationTime": time.time(),
            }
        )
        try:
            self.store.create("endpoint-config", name, arn, doc)
        except AlreadyExists:
            raise validation(f'Cannot create already existing endpoint configuration "{arn}".') from None
        if tags:
            self.store.add_tags(arn, tags)
        return {"EndpointConfigArn": arn}

    def describe_endpoint_config(self, p: dict[str, Any]) -> dict[str, Any]:
        name = _require(p, "EndpointConfigName")
        doc = self.store.get("endpoint-config", name)
        if doc is None:
            raise validation(
                f"Could not find endpoint configuration \"{self.arn('endpoint-config', name)}\"."
            )
        return doc

    def delete_endpoint_config(self, p: dict[str, Any]) -> dict[str, Any]:
        name = _require(p, "EndpointConfigName")
        try:
            self.store.delete("endpoint-config", name)
        except NotFound:
            raise validation(
                f"Could not find endpoint configuration \"{self.arn('endpoint-config', name)}\"."
            ) from None
        return {}

    def list_endpoint_configs(self, p: dict[str, Any]) -> dict[str, Any]:
        docs = _filter_and_sort(
            self.store.list("endpoint-config"),
            p,
            "EndpointConfigName",
            None,
            (),
            {"Name": "EndpointConfigName", "CreationTime": "CreationTime"},
        )
        page, token = _Pager.page(docs, p, name_key="EndpointConfigName")
        out: dict[str, Any] = {
            "EndpointConfigs": [
                {k: d[k] for k in ("EndpointConfigName", "EndpointConfigArn", "CreationTime")} for d in page
            ]
        }
        if token:
            out["NextToken"] = token
        return out

    # -- endpoints --------------------------------------------------------------------------------------

    def _config_or_error(self, name: str) -> dict[str, Any]:
        config = self.store.get("endpoint-config", name)
        if config is None:
            raise validation(
                f"Could not find endpoint configuration \"{self.arn('endpoint-config', name)}\"."
            )
        return config

    def _endpoint(self, name: str) -> dict[str, Any]:
        doc = self.store.get("endpoint", name)
        if doc is None:
            # A Describe of a missing endpoint is a ValidationException on AWS; the endpoint_deleted waiter
            # relies on it.
            raise validation(f"Could not find endpoint \"{self.arn('endpoint', name)}\".")
        return doc

    def create_endpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        name = _require(p, "EndpointName")
        _check_name(name, "endpointName")
        config_name = _require(p, "EndpointConfigName")
        config = self._config_or_error(config_name)
        deployment_config = p.get("DeploymentConfig")
        if deployment_config is not None:
            self._plan(deployment_config, config)  # kept for later updates (RetainDeploymentConfig)
        tags = _check_tags(p.get("Tags"))
        arn = self.arn("endpoint", name)
        now = time.time()
        doc = {
            "EndpointName": name,
            "EndpointArn": arn,
            "EndpointConfigName": config_name,
            "EndpointStatus": "Creating",
            "CreationTime": now,
            "LastModifiedTime": now,
        }
        if deployment_config is not None:
            doc["LastDeploymentConfig"] = deployment_config
        try:
            self.store.create("endpoint", name, arn, doc, status="Creating")
        except AlreadyExists:
            raise validation(f'Cannot create already existing endpoint "{arn}".') from None
        if tags:
            self.store.add_tags(arn, tags)
        self.endpoints.deploy_async(name, config_name, updating=False)
        return {"EndpointArn": arn}

    def describe_endpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        doc = dict(self._endpoint(_require(p, "EndpointName")))
        doc.pop("PendingEndpointConfigName", None)  # internal bookkeeping, not part of the AWS shape
        return doc

    def delete_endpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        name = _require(p, "EndpointName")
        doc = self._endpoint(name)
        if doc["EndpointStatus"] == "Deleting":
            return {}

        def change(d: dict[str, Any]) -> None:
            d["EndpointStatus"] = "Deleting"
            d["LastModifiedTime"] = time.time()

        self.store.update("endpoint", name, change, status_key="EndpointStatus")

        def finish() -> None:
            self.endpoints.undeploy(name)
            try:
                self.store.delete("endpoint", name)
            except NotFound:
                pass

        threading.Thread(target=finish, name=f"delete-{name}", daemon=True).start()
        return {}

    def list_endpoints(self, p: dict[str, Any]) -> dict[str, Any]:
        docs = _filter_and_sort(
            self.store.list("endpoint"),
            p,
            "EndpointName",
            "EndpointStatus",
            ENDPOINT_STATUSES,
            {"Name": "EndpointName", "CreationTime": "CreationTime", "Status": "EndpointStatus"},
        )
        page, token = _Pager.page(docs, p, name_key="EndpointName")
        keys = ("EndpointName", "EndpointArn", "CreationTime", "LastModifiedTime", "EndpointStatus")
        out: dict[str, Any] = {"Endpoints": [{k: d[k] for k in keys} for d in page]}
        if token:
            out["NextToken"] = token
        return out

    def update_endpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        name = _require(p, "EndpointName")
        config_name = _require(p, "EndpointConfigName")
        doc = self._endpoint(name)
        if doc["EndpointStatus"] != "InService":
            raise validation(f"Cannot update in-progress endpoint \"{doc['EndpointArn']}\".")
        config = self._config_or_error(config_name)
        if p.get("DeploymentConfig") is not None and p.get("RetainDeploymentConfig"):
            raise validation("DeploymentConfig and RetainDeploymentConfig cannot both be given.")
        deployment_config = p.get("DeploymentConfig")
        if deployment_config is None and p.get("RetainDeploymentConfig"):
            deployment_config = doc.get("LastDeploymentConfig")
        current = {v["VariantName"] for v in doc.get("ProductionVariants") or []}
        wanted = {v["VariantName"] for v in config["ProductionVariants"]}
        routing = ((deployment_config or {}).get("BlueGreenUpdatePolicy") or {}).get("TrafficRoutingConfiguration")
        if routing and routing.get("Type") in ("CANARY", "LINEAR") and current and current != wanted:
            raise validation(f"A {routing['Type']} traffic shift needs the same variant names in the new endpoint "
                             f"configuration: the endpoint has {sorted(current)}, \"{config_name}\" has "
                             f"{sorted(wanted)}.")
        plan = self._plan(deployment_config, config) if deployment_config is not None else None

        def change(d: dict[str, Any]) -> None:
            if d["EndpointStatus"] != "InService":
                raise validation(f"Cannot update in-progress endpoint \"{d['EndpointArn']}\".")
            d["EndpointStatus"] = "Updating"
            d["PendingEndpointConfigName"] = config_name
            d["LastModifiedTime"] = time.time()
            d.pop("FailureReason", None)
            if deployment_config is not None:
                d["LastDeploymentConfig"] = deployment_config
            d["PendingDeploymentSummary"] = {"EndpointConfigName": config_name, "StartTime": time.time()}

        self.store.update("endpoint", name, change, status_key="EndpointStatus")
        self.endpoints.deploy_async(name, config_name, updating=True, plan=plan)
        return {"EndpointArn": doc["EndpointArn"]}

    @staticmethod
    def _plan(deployment_config: Any, config: dict[str, Any]) -> Any:
        """The rollout plan of a DeploymentConfig for the fleet of endpoint config ``config``."""
        variants = config["ProductionVariants"]
        serverless = any(v.get("ServerlessConfig") for v in variants)
        plan = plan_for(deployment_config, sum(int(v.get("InitialInstanceCount") or 1) for v in variants))
        if serverless and plan.kind != "ALL_AT_ONCE":
            raise validation(f"{plan.kind} traffic shifting is not supported for serverless endpoints; use "
                             "ALL_AT_ONCE.")
        return plan

    def update_endpoint_weights_and_capacities(self, p: dict[str, Any]) -> dict[str, Any]:
        name = _require(p, "EndpointName")
        desired = _require(p, "DesiredWeightsAndCapacities")
        doc = self._endpoint(name)
        if doc["EndpointStatus"] != "InService":
            raise validation(f"Cannot update in-progress endpoint \"{doc['EndpointArn']}\".")
        variants = {v["VariantName"] for v in doc.get("ProductionVariants", [])}
        for item in desired:
            if item.get("VariantName") not in variants:
                raise validation(
                    f"The variant name(s) [{item.get('VariantName')}] is/are not present on the endpoint "
                    f"\"{doc['EndpointArn']}\"; its variants are: {', '.join(sorted(variants))}"
                )
            if "DesiredWeight" in item and (
                not isinstance(item["DesiredWeight"], (int, float)) or item["DesiredWeight"] < 0
            ):
                raise validation(f"DesiredWeight of {item['VariantName']!r} must be a number >= 0")
            if "DesiredInstanceCount" in item and (
                not isinstance(item["DesiredInstanceCount"], int) or item["DesiredInstanceCount"] < 1
            ):
                raise validation(f"DesiredInstanceCount of {item['VariantName']!r} must be an integer >= 1")

        def change(d: dict[str, Any]) -> None:
            d["EndpointStatus"] = "Updating"
            d["LastModifiedTime"] = time.time()

        self.store.update("endpoint", name, change, status_key="EndpointStatus")
        threading.Thread(target=self.endpoints.update_weights, args=(name, desired), daemon=True).start()
        return {"EndpointArn": doc["EndpointArn"]}

    # -- tags -------------------------------------------------------------------------------------------

    def _tag_target(self, p: dict[str, Any]) -> str:
        arn = _require(p, "ResourceArn")
        if self.store.kind_of_arn(arn) is None:
            raise validation(
                f"Resource {arn} does not exist or is not a resource the local service tags "
                "(training jobs, models, endpoint configs, endpoints, transform jobs)"
            )
        return arn

    def add_tags(self, p: dict[str, Any]) -> dict[str, Any]:
        arn = self._tag_target(p)
        tags = _check_tags(_require(p, "Tags"))
        if len({t["Key"] for t in self.store.list_tags(arn)} | {t["Key"] for t in tags}) > 50:
            raise validation("A resource can have at most 50 tags")
        self.store.add_tags(arn, tags)
        return {"Tags": tags}

    def list_tags(self, p: dict[str, Any]) -> dict[str, Any]:
        arn = self._tag_target(p)
        page, token = _Pager.page(self.store.list_tags(arn), p, default_size=50, max_size=100)
        out: dict[str, Any] = {"Tags": page}
        if token:
            out["NextToken"] = token
        return out

    def delete_tags(self, p: dict[str, Any]) -> dict[str, Any]:
        arn = self._tag_target(p)
        self.store.delete_tags(arn, list(_require(p, "TagKeys")))
        return {}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
