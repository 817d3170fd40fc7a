"""`mint push` against the local mock Hub (tests/mockhub.py): a checked folder goes up in one commit, and a fresh
process with an empty cache and without the package loads it by repo id exactly as it loads the local folder."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
import urllib.request

import pytest

from mint.hub.model_card import model_card
from tests import mockhub
from tests.conftest import ROOT
from tests.test_remote_code import HIDE_PACKAGE
from mint.cli import main
from mint.training.data import asterisk_pairs


REPO = "mint-org/mint-tiny-random"
TOKEN = "hf_mock_write_token"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """An empty mock Hub: (its URL, the folder its repos are written to)."""
    root = tmp_path_factory.mktemp("hub")
    with mockhub.running(root) as url:
        yield url, root


def requests_seen(url: str) -> list[str]:
    return json.loads(urllib.request.urlopen(f"{url}/_mock/requests", timeout=5).read())


@pytest.fixture(scope="module")
def pushable(tiny_model_dir, tmp_path_factory):
    """mint-tiny-random with a model card. `assemble` writes cards only for variants built from pretrained parts
    (variant.json), so the random test model gets mint-tiny's, the variant whose shape it has."""
    folder = tmp_path_factory.mktemp("push") / "mint-tiny-random"
    shutil.copytree(tiny_model_dir, folder)
    spec = json.loads((ROOT / "hub_configs" / "mint-tiny" / "variant.json").read_text())
    model_card("mint-tiny-random", spec, trained=False, lora_merged=False).save(folder / "README.md")
    return folder


def run_online(code: str, endpoint: str, hf_home, cwd, hide_package: bool) -> dict:
    """`code` in a new process that reaches the mock Hub (and only it); no HF_TOKEN unless the code passes one."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
    env.update(HF_ENDPOINT=endpoint, HF_HUB_OFFLINE="0", HF_HOME=str(hf_home))
    if not hide_package:
        env["PYTHONPATH"] = str(ROOT)
    script = (HIDE_PACKAGE if hide_package else "") + textwrap.dedent(code)
    proc = subprocess.run([sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # a mock Hub server, then loading in a fresh process
def test_push_then_load_by_repo_id(hub, pushable, tmp_path):
    url, root = hub
    # Through the CLI, with the token in HF_TOKEN as a user would have it. hf_xet is installed, so upload_folder takes
    # its pipelined path; with every file "regular" it never asks for a Xet token (checked below).
    pushed = run_online(
        f"""
        import contextlib, io, json, os
        from mint.cli import main
        os.environ["HF_TOKEN"] = {TOKEN!r}
        urls = []
        for _ in range(2):  # the second push of the unchanged folder
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                assert main(["push", {str(pushable)!r}, "--repo-id", {REPO!r}, "--commit-message", "first"]) == 0
            urls.append(out.getvalue().strip().splitlines()[-1])
        print(json.dumps(urls))
        """,
        url, tmp_path / "hf_home_push", ROOT, hide_package=False,
    )
    commit_url, again = pushed
    assert commit_url.startswith(f"{url}/{REPO}/commit/") and len(commit_url.rsplit("/", 1)[1]) == 40
    assert again == commit_url  # nothing changed, so no new commit
    local = {str(p.relative_to(pushable)): p.read_bytes() for p in pushable.rglob("*") if p.is_file()}
    remote_dir = root / REPO
    remote = {str(p.relative_to(remote_dir)): p.read_bytes() for p in remote_dir.rglob("*") if p.is_file()}
    assert remote == local  # every file, byte for byte, in one commit
    seen = requests_seen(url)
    # upload_folder sends the card to /api/validate-yaml; the unchanged second push stops after preupload
    push = ["POST /api/repos/create", "POST /api/validate-yaml", f"POST /api/models/{REPO}/preupload/main"]
    assert [r for r in seen if r.startswith("POST")] == [*push, f"POST /api/models/{REPO}/commit/main", *push]
    assert not any("xet" in r for r in seen)

    clip = next(p["audio"] for p in asterisk_pairs() if p["split"] == "test")
    hf_home = tmp_path / "hf_home_fresh"
    result = run_online(
        f"""
        import json, torch
        from huggingface_hub import ModelCard
        from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoProcessor, pipeline

        def load(source):
            config = AutoConfig.from_pretrained(source, trust_remote_code=True)
            base = AutoModel.from_pretrained(source, trust_remote_code=True)
            model = AutoModelForCausalLM.from_pretrained(source, trust_remote_code=True).eval()
            processor = AutoProcessor.from_pretrained(source, trust_remote_code=True)
            inputs = processor(text=["<audio> Transcribe the audio."], audio=[{clip!r}])
            with torch.no_grad():
                logits = model(**inputs).logits
                ids = model.generate(**inputs, max_new_tokens=6, min_new_tokens=6, do_sample=False)
            pipe = pipeline("audio-text-to-text", model=source, trust_remote_code=True)
            answer = pipe({clip!r}, prompt="Transcribe the audio.", max_new_tokens=6, min_new_tokens=6)
            return {{"classes": [type(x).__name__ for x in (config, base, model, processor, pipe)],
                    "module": type(model).__module__, "logits": logits, "ids": ids.tolist(),
                    "answer": answer["generated_text"]}}

        hub, local = load({REPO!r}), load({str(pushable)!r})
        card = ModelCard.load({REPO!r}).data
        print(json.dumps({{
            "hub": {{k: v for k, v in hub.items() if k != "logits"}},
            "local": {{k: v for k, v in local.items() if k != "logits"}},
            "same_logits": torch.equal(hub["logits"], local["logits"]),
            "card": {{k: getattr(card, k) for k in ("license", "pipeline_tag", "library_name", "base_model", "tags")}},
        }}))
        """,
        url, hf_home, tmp_path, hide_package=True,
    )
    hub_load, local_load = result["hub"], result["local"]
    assert hub_load["classes"] == ["MintConfig", "MintModel", "MintForConditionalGeneration", "MintProcessor",
                                   "AudioTextToTextPipeline"]
    assert hub_load["classes"] == local_load["classes"]
    assert hub_load["module"].startswith("transformers_modules.mint_hyphen_org")  # the repo's code, from the Hub
    assert (hf_home / "hub" / "models--mint-org--mint-tiny-random" / "snapshots").is_dir()
    assert result["same_logits"] and hub_load["ids"] == local_load["ids"] and len(hub_load["ids"][0]) > 6
    assert hub_load["answer"] == local_load["answer"]
    card = result["card"]
    assert card["license"] == "apache-2.0" and card["pipeline_tag"] == "audio-text-to-text"
    assert card["library_name"] == "transformers" and "custom_code" in card["tags"]
    assert card["base_model"] == ["openai/whisper-tiny.en", "sentence-transformers/all-MiniLM-L6-v2",
                                  "HuggingFaceTB/SmolLM2-135M-Instruct"]


@pytest.mark.slow  # a mock Hub server, then loading in a fresh process
def test_private_push_is_not_readable_without_a_token(hub, pushable, tmp_path):
    url, root = hub
    result = run_online(
        f"""
        import json
        from huggingface_hub import HfApi, hf_hub_download
        from huggingface_hub.errors import RepositoryNotFoundError
        from mint.cli import main

        repo = "mint-org/private-tiny"
        main(["push", {str(pushable)!r}, "--repo-id", repo, "--private", "--token", {TOKEN!r}])
        refused = []
        for read in (lambda: HfApi(token=False).model_info(repo),
                     lambda: hf_hub_download(repo, "config.json", token=False)):
            try:
                read()
            except RepositoryNotFoundError:
                refused.append(True)
        info = HfApi(token={TOKEN!r}).model_info(repo)
        config = json.load(open(hf_hub_download(repo, "config.json", token={TOKEN!r})))
        print(json.dumps({{"refused": refused, "private": info.private, "auto_map": config["auto_map"]}}))
        """,
        url, tmp_path / "hf_home", ROOT, hide_package=False,
    )
    assert result["refused"] == [True, True]
    assert result["private"] is True and "AutoModelForCausalLM" in result["auto_map"]
    assert (root / "mint-org" / "private-tiny" / "model.safetensors").is_file()


def _pickle_weights(folder):
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04K\x01.")


def _no_auto_map(folder):
    config = json.loads((folder / "config.json").read_text())
    del config["auto_map"]
    (folder / "config.json").write_text(json.dumps(config))


def _no_pipeline_code(folder):
    (folder / "pipeline_mint.py").unlink()


def _card_without_base_model(folder):
    model_card("mint-tiny-random", {}, trained=False, lora_merged=False).save(folder / "README.md")


def _card_with_broken_yaml(folder):
    text = (folder / "README.md").read_text()
    (folder / "README.md").write_text(text.replace("license: apache-2.0", "license: [apache-2.0", 1))


def _no_card(folder):
    (folder / "README.md").unlink()


@pytest.mark.parametrize("break_folder, message", [
    (_pickle_weights, r"pickle weight files are refused .*: pytorch_model\.bin"),
    (_no_auto_map, r"config\.json has no auto_map"),
    (_no_pipeline_code, r"custom_pipelines\['audio-text-to-text'\] names 'pipeline_mint\.AudioTextToTextPipeline' "
                        r"but pipeline_mint\.py is not in the folder"),
    (_card_without_base_model, r"README\.md metadata has no base_model"),
    (_card_with_broken_yaml, r"README\.md metadata does not parse"),
    (_no_card, r"README\.md \(the model card\) is missing"),
])
def test_incomplete_folder_is_refused_before_any_request(pushable, tmp_path, monkeypatch, break_folder, message):
    import mint.hub.push

    def no_hub(*args, **kwargs):
        raise AssertionError("the Hub was contacted")

    monkeypatch.setattr(mint.hub.push, "HfApi", no_hub)
    folder = tmp_path / "mint-tiny-random"
    shutil.copytree(pushable, folder)
    break_folder(folder)
    with pytest.raises(ValueError, match=message) as error:
        main(["push", str(folder), "--repo-id", REPO, "--token", TOKEN])
    assert str(error.value).count("\n- ") == 1  # the one thing broken, not a cascade
