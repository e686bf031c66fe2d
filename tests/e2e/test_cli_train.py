from __future__ import annotations

import csv
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.helpers import make_dataset, make_image
from tfrec_tools.cli import main

FAST = ["--epochs", "2", "--batch-size", "8", "--lr-max", "1e-4", "--warmup-epochs", "0", "--quiet"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    images, csv_path = make_dataset(root, n=48, groups=12, size=(16, 16))
    out = root / "shards"
    assert (
        run(
            "build",
            images,
            csv_path,
            "--out",
            out,
            "--size",
            "16",
            "--folds",
            "2",
            "--shards",
            "4",
            "--group-col",
            "patient_id",
            "--feature-col",
            "age",
            "--feature-col",
            "site",
            "--workers",
            "1",
        ).exit_code
        == 0
    )
    for i in range(6):
        make_image(root / "test" / f"t{i}.jpg", (16, 16), seed=100 + i)
    test_csv = root / "test.csv"
    test_csv.write_text("image_id,age,site\n" + "".join(f"t{i},{30 + i},head\n" for i in range(6)))
    assert (
        run(
            "build",
            root / "test",
            test_csv,
            "--out",
            out,
            "--name",
            "test",
            "--size",
            "16",
            "--shards",
            "2",
            "--feature-col",
            "age",
            "--feature-col",
            "site",
            "--vocab-from",
            out / "train.manifest.json",
            "--workers",
            "1",
        ).exit_code
        == 0
    )
    return out


def read_rows(path: Path) -> list[dict]:
    with open(path) as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_train_then_predict_round_trip(shards, tmp_path):
    run_dir = tmp_path / "run"
    result = run(
        "train",
        f"{shards}/train*.tfrec",
        "--test",
        f"{shards}/test*.tfrec",
        "--out",
        run_dir,
        "--tta",
        "2",
        "--description",
        "smoke",
        *FAST,
    )
    assert result.exit_code == 0, result.output
    assert "device: CPU (1 replicas" in result.output
    report = run_dir / "reports"
    assert result.output.rstrip().endswith(str(next(report.glob("*_smoke.md"))))
    oof = read_rows(run_dir / "oof.csv")
    assert sorted(r["image_id"] for r in oof) == sorted(f"img{i:03d}" for i in range(48))
    assert {r["fold"] for r in oof} == {"0", "1"}
    submission = read_rows(run_dir / "submission.csv")
    assert [r["image_id"] for r in submission] == [f"t{i}" for i in range(6)]
    assert {"label", "label_p_cat", "label_p_dog", "label_p_emu"} <= set(submission[0])
    for name in (
        "fold-0.weights.h5",
        "fold-1.weights.h5",
        "history.csv",
        "config.json",
        "model.json",
        "metrics.json",
        "lr.png",
        "curves.png",
    ):
        assert (run_dir / name).exists(), name
    predicted = tmp_path / "again.csv"
    result = run("predict", f"{shards}/test*.tfrec", "--run", run_dir, "--out", predicted)
    assert result.exit_code == 0, result.output
    again = read_rows(predicted)
    assert [r["image_id"] for r in again] == [r["image_id"] for r in submission]


@pytest.mark.slow
def test_augmentation_in_the_model_trains_and_predicts(shards, tmp_path):
    run_dir = tmp_path / "run"
    result = run(
        "train",
        f"{shards}/train*.tfrec",
        "--out",
        run_dir,
        "--fold",
        "0",
        "--augment-on",
        "model",
        *FAST,
    )
    assert result.exit_code == 0, result.output
    card = json.loads((run_dir / "model.json").read_text())
    assert card["model"]["augment"] == card["augment"]  # the settings, not a preset name
    assert card["augment_on"] == "model" and card["augment"]["flip_up_down"] is False
    assert "standard, in the model" in next((run_dir / "reports").glob("*.md")).read_text()
    predicted = tmp_path / "pred.csv"
    result = run("predict", f"{shards}/test*.tfrec", "--run", run_dir, "--out", predicted)
    assert result.exit_code == 0, result.output
    assert len(read_rows(predicted)) == 6


@pytest.mark.slow
def test_multi_output_fold(tmp_path):
    images, csv_path = make_dataset(tmp_path, n=32, groups=8, size=(16, 16))
    rows = read_rows(csv_path)
    with open(csv_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, [*rows[0], "size"])
        writer.writeheader()
        writer.writerows({**r, "size": f"{i * 0.1:.1f}"} for i, r in enumerate(rows))
    out = tmp_path / "shards"
    assert (
        run(
            "build",
            images,
            csv_path,
            "--out",
            out,
            "--size",
            "16",
            "--folds",
            "2",
            "--shards",
            "2",
            "--label-col",
            "label",
            "--label-col",
            "size",
            "--workers",
            "1",
        ).exit_code
        == 0
    )
    result = run(
        "train", out, "--out", tmp_path / "run", "--fold", "0", "--loss-weight", "size=0.5", *FAST
    )
    assert result.exit_code == 0, result.output
    oof = read_rows(tmp_path / "run" / "oof.csv")
    assert {"label_true", "label", "size_true", "size"} <= set(oof[0])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--fold", "7"], "--fold 7 does not exist: the shards have folds 0, 1"),
    ],
)
def test_bad_train_options(shards, tmp_path, args, message):
    result = run("train", f"{shards}/train*.tfrec", "--out", tmp_path / "run", *FAST, *args)
    assert result.exit_code == 1
    assert message in result.output and result.output.startswith("Error: ")
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--model", "effnet"],
            "Invalid value for '--model': 'effnet' is not one of 'efficientnet_b0',",
        ),
        (
            ["--augment", "standrad"],
            "Invalid value for '--augment': `augment` must be a preset (none, standard, "
            "kaggle-melanoma) or the path of an existing JSON file. Received: augment='standrad'",
        ),
    ],
)
def test_typos_exit_2_before_tensorflow_is_imported(tmp_path, args, message):
    code = (
        "import sys\n"
        "from tfrec_tools.cli import main\n"
        "try: main(sys.argv[1:])\n"
        "except SystemExit as exit: print('exit', exit.code, 'tensorflow' in sys.modules)\n"
    )
    command = [sys.executable, "-c", code, "train", "shards", "--out", str(tmp_path / "r"), *args]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.stdout.strip() == "exit 2 False"
    assert message in " ".join(result.stderr.split())
    assert not (tmp_path / "r").exists()


def learnable_shards(root: Path) -> Path:
    """48 noisy images whose colour is their class: small_cnn learns it in a few epochs."""
    from PIL import Image

    rng, rows = np.random.default_rng(0), []
    for i in range(48):
        colour = np.array([(200, 40, 40), (40, 200, 40), (40, 40, 200)][i % 3])
        pixels = np.clip(colour + rng.normal(0, 40, (16, 16, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(root / f"c{i:02d}.png")
        rows.append(f"c{i:02d},{'rgb'[i % 3]}\n")
    (root / "labels.csv").write_text("image_id,label\n" + "".join(rows))
    out = root / "shards"
    args = ("build", root, root / "labels.csv", "--out", out, "--folds", "2", "--shards", "4")
    assert run(*args, "--workers", "1").exit_code == 0
    return out


@pytest.mark.slow
def test_a_run_that_did_not_learn_warns_and_a_good_run_does_not(shards, tmp_path):
    tiny = ["--lr-max", "1e-9", "--lr-start", "0", "--lr-min", "0", "--warmup-epochs", "0"]
    args = ("--fold", "0", "--epochs", "2", "--batch-size", "8", "--quiet", "--augment", "none")
    result = run("train", f"{shards}/train*.tfrec", "--out", tmp_path / "tiny", *args, *tiny)
    assert result.exit_code == 0, result.output
    warning = next(line for line in result.output.splitlines() if line.startswith("Warning:"))
    assert "Warning: label: the model did not learn: OOF accuracy" in warning
    assert "Try: raise the learning rate: --lr-max 0.0002 (this run: 1e-09 per sample" in warning
    report = next((tmp_path / "tiny" / "reports").glob("*.md")).read_text()
    assert "## Recommendations\n\n- label: the model did not learn" in report
    sources = json.loads((tmp_path / "tiny" / "config.json").read_text())["sources"]
    assert sources["schedule.lr_max"] == "--lr-max"
    assert sources["schedule.kind"] == "model default (scratch)"

    (tmp_path / "rgb").mkdir()
    good = learnable_shards(tmp_path / "rgb")
    args = (*args, "--epochs", "6", "--batch-size", "4")  # model defaults: lr, schedule
    result = run("train", good, "--out", tmp_path / "good", *args)
    assert result.exit_code == 0, result.output
    assert "OOF label: accuracy 1.0000" in result.output and "Warning" not in result.output


def test_unlabeled_shards_cannot_train(shards, tmp_path):
    result = run("train", f"{shards}/test*.tfrec", "--out", tmp_path / "run", *FAST)
    assert result.exit_code == 1
    assert "hold no labels: train needs shards built with a labels CSV" in result.output


def test_test_shards_of_another_size_are_refused(shards, tmp_path):
    make_image(tmp_path / "t" / "a.jpg", (24, 24))
    make_image(tmp_path / "t" / "b.jpg", (24, 24), seed=2)
    test_csv = tmp_path / "t.csv"
    test_csv.write_text("image_id,age,site\na,1,head\nb,2,torso\n")
    assert (
        run(
            "build",
            tmp_path / "t",
            test_csv,
            "--out",
            tmp_path / "big",
            "--name",
            "test",
            "--size",
            "24",
            "--shards",
            "1",
            "--feature-col",
            "age",
            "--feature-col",
            "site",
            "--workers",
            "1",
        ).exit_code
        == 0
    )
    result = run(
        "train",
        f"{shards}/train*.tfrec",
        "--test",
        tmp_path / "big",
        "--out",
        tmp_path / "run",
        *FAST,
    )
    assert result.output.strip() == (
        "Error: the test shards store 24x24 images, training uses 16x16: rebuild them with "
        "--size 16x16, or pass --size to resize both when reading"
    )


def test_run_dir_with_results_needs_overwrite(shards, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "oof.csv").write_text("x\n")
    result = run("train", f"{shards}/train*.tfrec", "--out", tmp_path / "run", *FAST)
    assert result.output.strip() == (
        f"Error: {tmp_path / 'run'} already holds the results of a run (oof.csv); pass "
        "--overwrite to replace them, or choose another --out"
    )


def test_predict_needs_every_fold_checkpoint(shards, tmp_path):
    run_dir = tmp_path / "run"
    assert run("train", f"{shards}/train*.tfrec", "--out", run_dir, *FAST).exit_code == 0
    (run_dir / "fold-1.weights.h5").unlink()
    result = run("predict", f"{shards}/test*.tfrec", "--run", run_dir, "--out", tmp_path / "p.csv")
    assert result.output.strip().splitlines()[-1] == (  # after "run: RUN_DIR"
        f"Error: {run_dir / 'fold-1.weights.h5'} is missing: train that fold again, or copy the "
        "file back"
    )


def test_test_shards_with_other_codes_are_refused_until_built_with_vocab_from(shards, tmp_path):
    for i in range(2):
        make_image(tmp_path / "t" / f"u{i}.jpg", (16, 16), seed=i)
    test_csv = tmp_path / "t.csv"
    test_csv.write_text("image_id,age,site\nu0,1,torso\nu1,2,torso\n")  # only 'torso' seen
    args = [
        "build",
        tmp_path / "t",
        test_csv,
        "--out",
        tmp_path / "test",
        "--name",
        "test",
        "--size",
        "16",
        "--shards",
        "1",
        "--feature-col",
        "age",
        "--feature-col",
        "site",
        "--workers",
        "1",
    ]
    assert run(*args).exit_code == 0
    result = run(
        "train",
        f"{shards}/train*.tfrec",
        "--test",
        tmp_path / "test",
        "--out",
        tmp_path / "run",
        *FAST,
    )
    assert "the test shards code 'site' with another vocabulary than training" in result.output
    assert run(*args, "--overwrite", "--vocab-from", shards / "train.manifest.json").exit_code == 0
    from tfrec_tools.manifest import read_manifest

    site = read_manifest(str(tmp_path / "test" / "test.manifest.json")).features[1]
    assert site.vocabulary == ("head", "torso")


@pytest.mark.parametrize("where", ["frame header", "record data"])
def test_corrupted_shard_is_one_line_naming_the_file(shards, tmp_path, where):
    """A damaged frame header is named before any fold starts (resolve_files walks every
    frame); damaged record data only shows once TensorFlow reads it: the fold says so."""
    import shutil

    from tfrec_tools.records import iter_frames

    copy = tmp_path / "shards"
    shutil.copytree(shards, copy)
    victim = sorted(copy.glob("train*.tfrec"))[1]
    second_record = list(iter_frames(str(victim)))[1]
    data = bytearray(victim.read_bytes())
    data[second_record + (0 if where == "frame header" else 12 + 20)] ^= 0xFF
    victim.write_bytes(bytes(data))
    result = run("train", f"{copy}/train*.tfrec", "--out", tmp_path / "run", *FAST)
    assert result.exit_code == 1
    last = result.output.strip().splitlines()[-1]
    if where == "frame header":
        assert last.startswith(f"Error: {victim}: record 1") and "corrupted" in last
    else:
        assert last.startswith("Error: fold ") and "run `tfrec inspect --deep`" in last
    assert "Traceback" not in result.output


def test_fold_weights_of_the_wrong_length_fail_before_training(shards, tmp_path):
    result = run(
        "train",
        f"{shards}/train*.tfrec",
        "--test",
        f"{shards}/test*.tfrec",
        "--out",
        tmp_path / "run",
        "--fold-weights",
        "1,2,3",
        *FAST,
    )
    assert result.output.strip() == (
        "Error: --fold-weights gives 3 weights for 2 folds (0, 1): give one per fold"
    )
    assert not (tmp_path / "run" / "history.csv").exists()


def test_predict_into_a_new_folder(shards, tmp_path):
    run_dir = tmp_path / "run"
    assert (
        run("train", f"{shards}/train*.tfrec", "--out", run_dir, "--fold", "0", *FAST).exit_code
        == 0
    )
    out = tmp_path / "new" / "deeper" / "p.csv"
    result = run("predict", f"{shards}/test*.tfrec", "--run", run_dir, "--out", out)
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("image_id,")


@pytest.mark.slow
def test_two_deterministic_cpu_runs_give_identical_oof(shards, tmp_path):
    """Run in subprocesses: op determinism is process-wide and cannot be switched off again."""
    import subprocess
    import sys

    tfrec = Path(sys.executable).with_name("tfrec")
    for name in ("a", "b"):
        subprocess.run(
            [
                tfrec,
                "train",
                f"{shards}/train*.tfrec",
                "--out",
                tmp_path / name,
                "--deterministic",
                "--seed",
                "7",
                "--tta",
                "2",
                *FAST,
            ],
            check=True,
            capture_output=True,
        )
    first = (tmp_path / "a" / "oof.csv").read_text()
    assert first == (tmp_path / "b" / "oof.csv").read_text()
    assert len(first.splitlines()) == 49  # header + every image once


def test_foreign_shards_train_with_k_fold_over_files(tmp_path):
    from tests.helpers import write_foreign_shard

    for f in range(4):  # the public melanoma layout: image, image_name, target, patient_id
        rows = [
            {"image_name": f"ISIC_{f}_{i}", "target": i % 2, "patient_id": f"p{f}"}
            for i in range(8)
        ]
        write_foreign_shard(tmp_path / f"train{f:02d}-8.tfrec", rows, seed=f)
    result = run("train", tmp_path, "--out", tmp_path / "run", *FAST)
    assert result.output.strip().splitlines()[-1] == (  # after "training set: ..."
        "Error: the shards store no folds: pass --num-folds K to split the files K ways"
    )
    result = run("train", tmp_path, "--out", tmp_path / "run", "--num-folds", "2", *FAST)
    assert result.exit_code == 0, result.output
    oof = read_rows(tmp_path / "run" / "oof.csv")
    assert sorted(r["image_id"] for r in oof) == sorted(
        f"ISIC_{f}_{i}" for f in range(4) for i in range(8)
    )
    assert {r["target_true"] for r in oof} == {"0", "1"} and "target" in oof[0]


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_two_workers_train_and_only_the_chief_writes(shards, tmp_path):
    """Two `tfrec train` processes on 127.0.0.1 under MultiWorkerMirroredStrategy, with the same
    command (one --out): each predicts its share of every fold, the chief gathers them."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    chief = tmp_path / "run"
    workers = []
    for index in range(2):
        env = {
            **os.environ,
            "TF_CONFIG": json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": index}}
            ),
        }
        command = [sys.executable, "-c", "from tfrec_tools.cli import main; main()", "train"]
        command += [f"{shards}/train*.tfrec", "--test", f"{shards}/test*.tfrec"]
        command += ["--out", str(chief), *FAST]
        workers.append(
            subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        )
    try:
        outputs = [w.communicate(timeout=600)[0].decode() for w in workers]
    finally:
        for w in workers:
            w.kill()
    for worker, output in zip(workers, outputs):
        assert worker.returncode == 0, output
        assert (
            "device: CPU (2 workers, 2 replicas, MultiWorkerMirroredStrategy); global batch 16"
            in output
        )
        assert "fold 1: best epoch" in output
    # Each worker says which files it predicted: per fold, the two shares are disjoint and
    # together every validation file of the fold and every test file.
    shares = {
        (int(fold), int(index)): (int(count), set(valid.split(", ")), set(test.split(", ")))
        for index, output in enumerate(outputs)
        for fold, worker, count, valid, test in re.findall(
            r"fold (\d): worker (\d) of 2 predicted (\d+) validation images \(([^)]*)\) and "
            r"\d+ test images \(([^)]*)\)",
            output,
        )
        if int(worker) == index
    }
    assert sorted(shares) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    train_files = {p.name for p in shards.glob("train*.tfrec")}
    test_files = {p.name for p in shards.glob("test*.tfrec")}
    assert len(test_files) == 2
    valid = [shares[fold, index][1] for fold in (0, 1) for index in (0, 1)]
    assert all(valid) and sorted(f for files in valid for f in files) == sorted(train_files)
    for fold in (0, 1):
        assert not shares[fold, 0][2] & shares[fold, 1][2]
        assert shares[fold, 0][2] | shares[fold, 1][2] == test_files
    oof = read_rows(chief / "oof.csv")
    assert sorted(r["image_id"] for r in oof) == sorted(f"img{i:03d}" for i in range(48))
    for fold in (0, 1):  # the chief gathered both workers' shares of each fold
        rows = sum(r["fold"] == str(fold) for r in oof)
        assert rows == shares[fold, 0][0] + shares[fold, 1][0]
    assert [r["image_id"] for r in read_rows(chief / "submission.csv")] == [
        f"t{i}" for i in range(6)
    ]
    history = read_rows(chief / "history.csv")
    assert [(r["fold"], r["epoch"]) for r in history] == [
        ("0", "0"),
        ("0", "1"),
        ("1", "0"),
        ("1", "1"),
    ]
    # The workers validate the whole fold together; each predicts its share alone (no TTA):
    # the same model, so the OOF gathered from both shares scores as the best epoch did. The
    # loss differs if a worker predicted with other weights or batch-norm statistics.
    per_fold = json.loads((chief / "metrics.json").read_text())["per_fold"]
    for fold in ("0", "1"):
        best = max(
            (r for r in history if r["fold"] == fold), key=lambda r: float(r["val_accuracy"])
        )
        assert float(best["val_loss"]) == pytest.approx(
            per_fold[fold]["label"]["log_loss"], rel=1e-5
        )
    # What a one-worker run writes, nothing more: the shares are gone once gathered.
    assert sorted(p.name for p in chief.iterdir()) == [
        "config.json",
        "curves.png",
        "fold-0.weights.h5",
        "fold-1.weights.h5",
        "fold_weights.json",
        "history.csv",
        "lr.png",
        "metrics.json",
        "model.json",
        "oof.csv",
        "reports",
        "submission.csv",
    ]
    assert next((chief / "reports").glob("*.md"))


def test_freeze_epochs_must_leave_an_epoch_to_fine_tune(shards, tmp_path):
    args = ("--epochs", "2", "--freeze-epochs", "2")
    result = run("train", f"{shards}/train*.tfrec", "--out", tmp_path / "run", *args)
    assert result.exit_code == 1
    assert result.output == (
        "Error: `freeze_epochs` must be < `epochs`: at least one epoch must train the unfrozen "
        "backbone. Received: freeze_epochs=2, epochs=2\n"
    )
    assert not (tmp_path / "run").exists()


def test_steps_per_execution_below_one_is_exit_2(shards, tmp_path):
    args = ("--steps-per-execution", "0")
    result = run("train", f"{shards}/train*.tfrec", "--out", tmp_path / "run", *args)
    assert result.exit_code == 2
    assert "Invalid value for '--steps-per-execution': 0 is not in the range x>=1." in (
        result.output
    )


@pytest.mark.slow
def test_freeze_epochs_and_steps_per_execution_train_and_predict(shards, tmp_path):
    run_dir = tmp_path / "run"
    args = ("--fold", "0", "--freeze-epochs", "1", "--steps-per-execution", "2")
    result = run("train", f"{shards}/train*.tfrec", "--out", run_dir, *args, *FAST)
    assert result.exit_code == 0, result.output
    assert "note: --freeze-epochs 1 with --weights none trains the heads on a random" in (
        result.output
    )
    config = json.loads((run_dir / "config.json").read_text())
    assert (config["freeze_epochs"], config["steps_per_execution"]) == (1, 2)
    report = next((run_dir / "reports").glob("*.md")).read_text()
    assert "| frozen backbone | epoch 1, then fine-tuned; BatchNorm after that: trained " in report
    assert "| steps per execution | 2 |" in report
    history = read_rows(run_dir / "history.csv")
    assert [(r["fold"], r["epoch"]) for r in history] == [("0", "0"), ("0", "1")]
    predicted = tmp_path / "pred.csv"
    result = run("predict", f"{shards}/test*.tfrec", "--run", run_dir, "--out", predicted)
    assert result.exit_code == 0, result.output
    assert len(read_rows(predicted)) == 6
