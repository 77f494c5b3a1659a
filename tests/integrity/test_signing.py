"""OpenSSF model signing: compsec's OMS bundles checked by the real ``model_signing`` (CLI and API) and
model_signing's bundles checked by compsec; tampering named down to the file and the tensor."""

import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from signing_keys import write_certificate_chain, write_key_pair
from tiny_checkpoints import TARGET, one_ulp_inside_box, rewrite_tensor, save_tiny_llama

pytest.importorskip("model_signing", reason="needs the 'sign' extra: pip install 'compsec[sign]'")

from compsec.cli.main import run
from compsec.integrity.digests import safetensors_tensor_digests
from compsec.integrity.oms_sign import TENSOR_EXTENSION, sign_model
from compsec.integrity.oms_verify import verify_signed_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return save_tiny_llama(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return write_key_pair(tmp_path_factory.mktemp("keys"))


def model_signing_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "model_signing", *args], capture_output=True, text=True,
                          timeout=120, check=False)


def lines(changes):
    return [change.line() for change in changes]


def signed_copy(tiny: Path, folder: Path, keys) -> tuple[Path, Path]:
    shutil.copytree(tiny, folder)
    signature = folder.parent / f"{folder.name}.sig"
    sign_model(folder, keys[0], signature)
    return folder, signature


def statement_of(signature: Path) -> dict:
    return json.loads(base64.b64decode(json.loads(signature.read_text())["dsseEnvelope"]["payload"]))


def test_compsec_bundle_is_verified_by_the_model_signing_cli_and_api(tiny, keys, tmp_path, capsys):
    signature = tmp_path / "model.sig"
    assert run(["sign", str(tiny), "--key", str(keys[0]), "--signature", str(signature)]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {signature}: 3 files, 12 tensors")
    done = model_signing_cli("verify", "key", str(tiny), "--signature", str(signature), "--public_key", str(keys[1]))
    assert done.returncode == 0, done.stdout + done.stderr
    from model_signing import verifying

    verifying.Config().use_elliptic_key_verifier(public_key=keys[1]).verify(tiny, signature)
    predicate = statement_of(signature)["predicate"]
    assert predicate["serialization"]["method"] == "files"
    tensors = predicate[TENSOR_EXTENSION]["files"]["model.safetensors"]["tensors"]
    assert tensors[TARGET]["sha256"] == safetensors_tensor_digests(tiny / "model.safetensors")[TARGET].sha256
    assert run(["verify", str(tiny), "--signature", str(signature), "--key", str(keys[1])]) == 0


def test_model_signing_cli_bundle_is_verified_by_compsec(tiny, keys, tmp_path, capsys):
    folder = tmp_path / "m"
    shutil.copytree(tiny, folder)
    signature = tmp_path / "oms.sig"
    done = model_signing_cli("sign", "key", str(folder), "--private_key", str(keys[0]), "--signature", str(signature))
    assert done.returncode == 0, done.stdout + done.stderr
    assert run(["verify", str(folder), "--signature", str(signature), "--key", str(keys[1])]) == 0
    (folder / "model.safetensors").write_bytes(b"\0" + (folder / "model.safetensors").read_bytes()[1:])
    capsys.readouterr()
    assert run(["verify", str(folder), "--signature", str(signature), "--key", str(keys[1])]) == 1
    assert capsys.readouterr().out.splitlines()[0].startswith("changed file model.safetensors")


def test_changed_tensor_is_named_and_model_signing_agrees(tiny, keys, tmp_path, capsys):
    folder, signature = signed_copy(tiny, tmp_path / "m", keys)
    rewrite_tensor(tiny, folder, TARGET, one_ulp_inside_box)
    assert run(["verify", str(folder), "--signature", str(signature), "--key", str(keys[1])]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "changed file model.safetensors", f"changed tensor model.safetensors: {TARGET}"]
    done = model_signing_cli("verify", "key", str(folder), "--signature", str(signature), "--public_key", str(keys[1]))
    assert done.returncode != 0


def test_added_and_removed_files_are_named(tiny, keys, tmp_path):
    folder, signature = signed_copy(tiny, tmp_path / "m", keys)
    (folder / "generation_config.json").unlink()
    (folder / "extra.bin").write_bytes(b"\x80\x04N.")
    assert lines(verify_signed_model(folder, signature, keys[1])) == [
        "extra file extra.bin", "missing file generation_config.json"]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fraction=st.floats(0, 1, exclude_max=True), bit=st.integers(0, 7))
def test_any_flipped_data_bit_names_the_tensor_holding_it(tiny, keys, tmp_path_factory, fraction, bit):
    folder, signature = signed_copy(tiny, tmp_path_factory.mktemp("flip") / "m", keys)
    weights = folder / "model.safetensors"
    raw = bytearray(weights.read_bytes())
    data_start = 8 + int.from_bytes(raw[:8], "little")
    position = data_start + int(fraction * (len(raw) - data_start))
    raw[position] ^= 1 << bit
    weights.write_bytes(bytes(raw))
    header = json.loads(raw[8:data_start])
    holder = next(name for name, entry in header.items() if name != "__metadata__"
                  and entry["data_offsets"][0] <= position - data_start < entry["data_offsets"][1])
    assert lines(verify_signed_model(folder, signature, keys[1])) == [
        "changed file model.safetensors", f"changed tensor model.safetensors: {holder}"]


def test_single_file_model_signs_and_verifies(tiny, keys, tmp_path):
    weights = tmp_path / "model.safetensors"
    shutil.copy(tiny / "model.safetensors", weights)
    signature = tmp_path / "weights.sig"
    assert sign_model(weights, keys[0], signature)[0] == 1
    assert verify_signed_model(weights, signature, keys[1]) == []
    rewrite_tensor(tiny, tmp_path / "b", TARGET, one_ulp_inside_box)
    shutil.copy(tmp_path / "b" / "model.safetensors", weights)
    assert lines(verify_signed_model(weights, signature, keys[1])) == ["changed file .", f"changed tensor .: {TARGET}"]


def test_signature_inside_the_folder_is_left_out_of_itself(tiny, keys, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(tiny, folder)
    assert run(["sign", str(folder), "--key", str(keys[0]), "--signature", str(folder / "model.sig")]) == 0
    done = model_signing_cli("verify", "key", str(folder), "--signature", str(folder / "model.sig"),
                             "--public_key", str(keys[1]))
    assert done.returncode == 0, done.stdout + done.stderr
    assert verify_signed_model(folder, folder / "model.sig", keys[1]) == []


def test_wrong_key_and_altered_bundle_fail_verification(tiny, keys, tmp_path):
    folder, signature = signed_copy(tiny, tmp_path / "m", keys)
    other = write_key_pair(tmp_path, "other")
    assert [c.level for c in verify_signed_model(folder, signature, other[1])] == ["signature"]
    bundle = json.loads(signature.read_text())
    statement = statement_of(signature)
    statement["predicate"]["resources"][0]["digest"] = "0" * 64
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    signature.write_text(json.dumps(bundle))
    assert lines(verify_signed_model(folder, signature, keys[1]))[0].startswith("invalid signature")


def test_certificate_chain_signing_is_verified_by_model_signing(tiny, tmp_path):
    from model_signing import verifying

    signer_key, signer_cert, root = write_certificate_chain(tmp_path)
    signature = tmp_path / "cert.sig"
    assert run(["sign", str(tiny), "--key", str(signer_key), "--certificate", str(signer_cert),
                "--chain", str(root), "--signature", str(signature)]) == 0
    verifying.Config().use_certificate_verifier(certificate_chain=[root]).verify(tiny, signature)
    assert run(["verify", str(tiny), "--signature", str(signature), "--chain", str(root)]) == 0
    (tmp_path / "stranger").mkdir()
    stranger_root = write_certificate_chain(tmp_path / "stranger")[2]
    assert run(["verify", str(tiny), "--signature", str(signature), "--chain", str(stranger_root)]) == 1


@pytest.mark.parametrize("case", ["garbage bundle", "missing key", "not a key", "no key", "key and chain"])
def test_bad_inputs_exit_2_with_one_line(tiny, keys, tmp_path, capsys, case):
    signature = tmp_path / "model.sig"
    sign_model(tiny, keys[0], signature)
    args = ["verify", str(tiny), "--signature", str(signature), "--key", str(keys[1])]
    if case == "garbage bundle":
        signature.write_text("{not json")
    elif case == "missing key":
        args[-1] = str(tmp_path / "absent.pem")
    elif case == "not a key":
        (tmp_path / "junk.pem").write_text("hello")
        args[-1] = str(tmp_path / "junk.pem")
    elif case == "no key":
        args = args[:-2]
    else:
        args += ["--chain", str(keys[1])]
    capsys.readouterr()
    assert run(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_model_signing_certificate_bundle_is_verified_by_compsec(tiny, tmp_path, capsys):
    signer_key, signer_cert, root = write_certificate_chain(tmp_path)
    folder = tmp_path / "m"
    shutil.copytree(tiny, folder)
    signature = tmp_path / "oms-cert.sig"
    done = model_signing_cli("sign", "certificate", str(folder), "--private_key", str(signer_key),
                             "--signing_certificate", str(signer_cert), "--certificate_chain", str(root),
                             "--signature", str(signature))
    assert done.returncode == 0, done.stdout + done.stderr
    assert run(["verify", str(folder), "--signature", str(signature), "--chain", str(root)]) == 0
    (folder / "config.json").write_text("{}")
    capsys.readouterr()
    assert run(["verify", str(folder), "--signature", str(signature), "--chain", str(root)]) == 1
    assert capsys.readouterr().out.splitlines() == ["changed file config.json"]
