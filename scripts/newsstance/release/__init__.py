"""newsstance.release stage: build, validate and publish the versioned Hugging Face dataset.

Python API (imported lazily by the CLI):
    ReleaseOptions.resolve(...)   -> ReleaseOptions     newsstance.release.options (every build choice, once)
    build_release(options)        -> ReleaseResult      newsstance.release.build (or build_release(**same keywords))
    resolve_gold(explicit=None)   -> GoldChoice         newsstance.release.options (the one gold default)
    features_for(scheme, config)  -> datasets.Features  newsstance.release.features
    load_release_dataset(path, config="default", split=None, version=None, streaming=False)
    publish_release(repo_id, version, dist="dist", private=False, dry_run=False)  (batched, resumable)
"""
