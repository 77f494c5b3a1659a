"""The provenance chain in OMS bundles: ``compsec prune`` output signed, then verified against its source.

The bundle carries the prune record (source digest → recipe → output digests) inside the signed statement,
model_signing's own CLI still verifies it, and ``compsec verify --source`` tells the real source from another."""

import json
import shutil
import subprocess
import sys

import pytest
from signing_keys import write_key_pair
from test_signing import statement_of
from tiny_checkpoints import TARGET, rewrite_tensor

from compsec.cli.main import run
from compsec.integrity.oms_chain import PROVENANCE_EXTENSION
from compsec.integrity.provenance import SIDECAR_NAME


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return write_key_pair(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def pruned(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("chain") / "pruned"
    assert run(["prune", str(tiny_model_dir), "--method", "magnitude-layer", "--sparsity", "0.3",
                "--out", str(out)]) == 0
    return out


def sign(folder, keys, signature):
    return run(["sign", str(folder), "--key", str(keys[0]), "--signature", str(signature)])


def verify(folder, keys, signature, *source):
    return run(["verify", str(folder), "--signature", str(signature), "--key", str(keys[1]), *source])


def test_signed_prune_output_carries_its_chain_and_verifies_against_its_source(pruned, tiny_model_dir, keys,
                                                                               tmp_path, capsys):
    signature = tmp_path / "pruned.sig"
    assert sign(pruned, keys, signature) == 0
    chain = statement_of(signature)["predicate"][PROVENANCE_EXTENSION]
    assert chain == json.loads((pruned / SIDECAR_NAME).read_text())
    assert chain["operation"] == "prune" and chain["output_tensor_digests"]
    done = subprocess.run([sys.executable, "-m", "model_signing", "verify", "key", str(pruned), "--signature",
                           str(signature), "--public_key", str(keys[1])], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    capsys.readouterr()
    assert verify(pruned, keys, signature, "--source", str(tiny_model_dir)) == 0
    assert f"was made from {tiny_model_dir}" in capsys.readouterr().out


def test_a_swapped_source_is_detected(pruned, tiny_model_dir, keys, tmp_path, capsys):
    signature = tmp_path / "pruned.sig"
    assert sign(pruned, keys, signature) == 0
    rewrite_tensor(tiny_model_dir, tmp_path / "other", TARGET, lambda w: w * 1.5)
    capsys.readouterr()
    assert verify(pruned, keys, signature, "--source", str(tmp_path / "other")) == 1
    assert f"changed source {tmp_path / 'other'} (not the source this model was made from by prune)" in \
        capsys.readouterr().out


def test_signed_record_that_lies_about_the_outputs_breaks_the_chain(pruned, keys, tmp_path, capsys):
    folder = tmp_path / "edited"
    rewrite_tensor(pruned, folder, TARGET, lambda w: w + 0.25)  # the sidecar still records the pruned digests
    assert sign(folder, keys, tmp_path / "edited.sig") == 0
    capsys.readouterr()
    assert verify(folder, keys, tmp_path / "edited.sig") == 1
    assert f"changed tensor provenance chain: {TARGET} (differs from the signed output)" in capsys.readouterr().out


def test_source_check_needs_a_chain_and_a_tampered_record_is_not_signed(pruned, tiny_model_dir, keys, tmp_path):
    plain = tmp_path / "plain.sig"
    assert sign(tiny_model_dir, keys, plain) == 0
    assert verify(tiny_model_dir, keys, plain) == 0
    assert verify(tiny_model_dir, keys, plain, "--source", str(tiny_model_dir)) == 2
    folder = shutil.copytree(pruned, tmp_path / "forged")
    record = json.loads((folder / SIDECAR_NAME).read_text())
    (folder / SIDECAR_NAME).write_text(json.dumps({**record, "operation": "copy"}))
    assert sign(folder, keys, tmp_path / "forged.sig") == 2
    assert not (tmp_path / "forged.sig").exists()
