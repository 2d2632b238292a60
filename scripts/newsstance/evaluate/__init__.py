"""newsstance.evaluate stage: score predictions against a release, baselines, leaderboard.

Python API:
    load_release(dataset=None, config="default", split="test", revision=None, extra_splits=())
                                                        newsstance.evaluate.dataset
    evaluate_predictions(path, release, allow_missing=False, resamples=1000, seed=0, compare=None,
                         tasks=None) -> dict        newsstance.evaluate.report (streams the files)
    baseline_predictions(name, train, articles, scheme, model, label_map=None)
                                                        newsstance.evaluate.baselines
    run_leaderboard(dataset | release=..., split="test") -> dict; leaderboard_markdown(results) -> str
                                                        newsstance.evaluate.leaderboard
"""
