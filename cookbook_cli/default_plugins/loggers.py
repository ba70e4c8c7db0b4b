"""Core's trackers, registered through `register_loggers` like any plugin's.

Each needs its package (an optional extra); nothing is imported until a run
opens the logger, so the CLI starts as fast without them.
"""

from __future__ import annotations

from cookbook_cli.plugins.spec import Register, hookimpl


@hookimpl(specname="register_loggers")
def register_builtin_loggers(register: Register) -> None:
    from cookbook_cli.loggers.builtin import check_wandb, open_mlflow, open_tensorboard, open_wandb

    # Field lists are spelled here (not imported) so that listing loggers imports no logger module.
    register(
        "wandb",
        open_wandb,
        "Weights & Biases: metrics, config, transcripts; files in <run>/wandb (WANDB_MODE=offline works)",
        fields={
            "project": "W&B project (default: WANDB_PROJECT, else 'cookbook')",
            "entity": "team or user (default: WANDB_ENTITY, else your default entity)",
            "name": "display name of the run (default: the run directory's name)",
            "tags": "comma-separated tags",
            "group": "group runs together in the UI",
            "notes": "a description of the run",
            "mode": "online, offline or disabled (default: WANDB_MODE, else online)",
        },
        check_options=check_wandb,
        requires=("wandb",),
        extra="wandb",
    )
    register(
        "tensorboard",
        open_tensorboard,
        "TensorBoard event files in <run>/tensorboard: scalars, config and checkpoints as text",
        fields={},
        requires=("tensorboard",),
        extra="tensorboard",
    )
    register(
        "mlflow",
        open_mlflow,
        "MLflow: metrics, params, transcripts as artifacts; a local store in <run>/mlflow or any tracking URI",
        fields={
            "tracking_uri": "where runs are stored (default: MLFLOW_TRACKING_URI, else <run>/mlflow/mlflow.db)",
            "experiment": "experiment name (default: MLFLOW_EXPERIMENT_NAME, else 'cookbook')",
            "run_name": "display name of the run (default: the run directory's name)",
        },
        requires=("mlflow",),
        extra="mlflow",
    )
