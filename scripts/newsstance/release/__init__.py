"""newsstance.release stage: build, validate and publish the versioned Hugging Face dataset.

Python API (imported lazily by the CLI):
    build_release(...)            -> ReleaseResult      newsstance.release.build
    features_for(scheme, config)  -> datasets.Features  newsstance.release.features
    load_release_dataset(path, config="default", split=None, version=None, streaming=False)
    publish_release(repo_id, version, dist="dist", private=False, dry_run=False)
"""
