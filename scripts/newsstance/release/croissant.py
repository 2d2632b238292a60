"""`croissant.json`: Croissant 1.0 metadata (JSON-LD) of a release, for tools that find datasets by it.

Laid out as the Hub's own Croissant export is: the repository is one `cr:FileObject`, each config's
parquet shards a `cr:FileSet` inside it, each config a `cr:RecordSet` whose fields extract parquet
columns (lists are `repeated`, structs have `subField`s). Written from the same `Features` as the
parquet files and the card, so the three cannot disagree. `REPO_ID` is filled in by `publish`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datasets import ClassLabel, Features, List, Value

if TYPE_CHECKING:
    from newsstance.release.options import ReleaseOptions

FILE = "croissant.json"
REPO_PLACEHOLDER = "REPO_ID"
CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}
LICENSE_URLS = {
    "cc0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
    "cc-by-4.0": "https://creativecommons.org/licenses/by/4.0/",
    "cc-by-sa-4.0": "https://creativecommons.org/licenses/by-sa/4.0/",
    "cc-by-nc-4.0": "https://creativecommons.org/licenses/by-nc/4.0/",
    "cc-by-nc-sa-4.0": "https://creativecommons.org/licenses/by-nc-sa/4.0/",
    "cc-by-nc-nd-4.0": "https://creativecommons.org/licenses/by-nc-nd/4.0/",
    "apache-2.0": "https://www.apache.org/licenses/LICENSE-2.0",
    "mit": "https://opensource.org/licenses/MIT",
    "odc-by": "https://opendatacommons.org/licenses/by/1-0/",
    "odbl": "https://opendatacommons.org/licenses/odbl/1-0/",
    "pddl": "https://opendatacommons.org/licenses/pddl/1-0/",
}
_DTYPES = {"string": "sc:Text", "bool": "sc:Boolean", "float32": "sc:Float", "float64": "sc:Float"}


def _data_type(feature: object) -> str:
    if isinstance(feature, ClassLabel):
        return "sc:Integer"
    if isinstance(feature, Value):
        return _DTYPES.get(feature.dtype, "sc:Integer" if "int" in feature.dtype else "sc:Text")
    return "sc:Text"


def _field(record_set: str, name: str, feature: object, source: Mapping[str, Any], column: str) -> dict[str, Any]:
    """A Croissant field for one feature; `column` is the parquet column it is extracted from."""
    field_id = f"{record_set}/{name}"
    entry: dict[str, Any] = {"@type": "cr:Field", "@id": field_id, "name": field_id}
    inner = feature
    if isinstance(feature, List):
        entry["repeated"] = True
        inner = feature.feature
    if isinstance(inner, ClassLabel):
        entry["description"] = "Label id: " + ", ".join(f"{i}={n}" for i, n in enumerate(inner.names))
    if isinstance(inner, dict):
        entry["subField"] = [
            _field(field_id, sub, sub_feature, source, f"{column}/{sub}") for sub, sub_feature in inner.items()
        ]
        return entry
    entry["dataType"] = _data_type(inner)
    entry["source"] = {**source, "extract": {"column": column.split("/")[0]}}
    if "/" in column:
        entry["source"]["transform"] = {"jsonPath": column.split("/", 1)[1].replace("/", ".")}
    return entry


def metadata(
    opts: ReleaseOptions,
    version: str,
    features: Mapping[str, Features],
    data_files: Mapping[str, Mapping[str, list[str]]],
    rows: Mapping[str, Mapping[str, int]],
    release_dir: Path,
    date: str,
) -> dict[str, Any]:
    """The Croissant document of one release (URLs use `REPO_ID` until `publish` fills it in)."""
    url = opts.project.homepage or f"https://huggingface.co/datasets/{REPO_PLACEHOLDER}"
    distribution: list[dict[str, Any]] = [
        {
            "@type": "cr:FileObject",
            "@id": "repo",
            "name": "repo",
            "description": "The Hugging Face git repository of the dataset.",
            "contentUrl": f"https://huggingface.co/datasets/{REPO_PLACEHOLDER}/tree/v{version}",
            "encodingFormat": "git+https",
            "sha256": "https://github.com/mlcommons/croissant/issues/80",
        }
    ]
    record_sets = []
    for config, files in data_files.items():
        set_id = f"parquet-files-for-config-{config}"
        distribution.append(
            {
                "@type": "cr:FileSet",
                "@id": set_id,
                "name": set_id,
                "description": f"The `{config}` config: "
                + ", ".join(f"{split} {rows[config][split]} rows" for split in files),
                "containedIn": {"@id": "repo"},
                "encodingFormat": "application/x-parquet",
                "includes": f"data/{config}/*.parquet",
            }
        )
        source = {"fileSet": {"@id": set_id}}
        fields = [_field(config, name, feature, source, name) for name, feature in features[config].items()]
        record_sets.append(
            {
                "@type": "cr:RecordSet",
                "@id": config,
                "name": config,
                "description": f"{opts.pretty_name} - `{config}` config (one record per article).",
                "field": fields,
            }
        )
    license_url = opts.license_link if opts.license_id == "other" else LICENSE_URLS.get(opts.license_id)
    return {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": "http://mlcommons.org/croissant/1.0",
        "name": opts.pretty_name,
        "description": f"{opts.pretty_name}: news articles annotated for named entities and stance "
        "(towards fixed targets and towards each entity mention).",
        "url": url,
        "version": version,
        "datePublished": date,
        "license": license_url or opts.license_id,
        "creator": {"@type": "sc:Organization", "name": opts.project.authors},
        "citeAs": opts.project.citation or f"{opts.project.authors}. {opts.pretty_name} {version}. {url}",
        "keywords": ["named-entity-recognition", "stance-detection", "news"],
        "isLiveDataset": False,
        "distribution": distribution,
        "recordSet": record_sets,
        **({"sameAs": opts.project.repository} if opts.project.repository else {}),
    }
