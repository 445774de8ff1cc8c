"""The device parameter: "auto" picks CUDA, a GPU asked for where there is
none is an error, a GPU-trained model loads on the CPU (tests/test_io.py).
The CUDA tests run only where CUDA is available."""

import pytest
import torch
from conftest import mixed_table, tiny

from augment import TabularGAN, TabularVAE
from augment.nn import resolve_device

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="CUDA is not available")


def test_auto_and_cpu():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if CUDA else "cpu")
    with pytest.raises(ValueError, match="is not a device"):
        resolve_device("gpu please")


@pytest.mark.skipif(CUDA, reason="CUDA is available")
def test_cuda_asked_for_where_there_is_none():
    with pytest.raises(RuntimeError, match="CUDA, which is not available"):
        resolve_device("cuda")
    with pytest.raises(RuntimeError, match="device='cuda:0'"):
        tiny(TabularVAE, device="cuda:0").fit(mixed_table(60))


@needs_cuda
def test_gpu_index_past_the_gpus():
    with pytest.raises(RuntimeError, match="CUDA devices here"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")


@needs_cuda
@pytest.mark.parametrize("cls", [TabularVAE, TabularGAN])
def test_gpu_model_and_its_cpu_copy(cls, tmp_path):
    import augment

    gen = tiny(cls, device="cuda").fit(mixed_table(200))
    assert next(gen.module_.parameters()).device.type == "cuda"
    gen.save(tmp_path / "gpu.augment")
    on_cpu = augment.load(tmp_path / "gpu.augment", device="cpu")
    for name, tensor in gen.module_.state_dict().items():
        assert torch.equal(tensor.cpu(), on_cpu.module_.state_dict()[name]), name
    # CUDA's random numbers are not the CPU's: the same model, other draws;
    # the rows agree in distribution
    a = gen.sample(2000, random_state=0).select_dtypes("number")
    b = on_cpu.sample(2000, random_state=0).select_dtypes("number")
    assert ((a.mean() - b.mean()).abs() <= 0.2 * (b.std() + 1e-9)).all()
