"""Tools that run on the control node only: the fleet model cache, model metadata, the release
artifact, SSH tuning, the run summary and the settings-table generator."""
