"""Places where Hydra's own behaviour misleads an apbench user, adjusted while ``apbench run`` composes.

- A misspelt key without ``+`` (``trainer.epoch=3``): Hydra advises ``+trainer.epoch=3``, which would
  only add a key that nothing reads (and that validation then refuses). Here the message names the
  close valid key (``trainer.epochs``) or lists the keys there are.
- A sweep cell that does not compose (``-m method=ap,linear_probe 'method.layers=[8]'``: linear
  probing has no layers): Hydra's sweeper refuses the whole sweep before any run. Here that cell is
  reported and left out, the others run, and ``apbench run`` ends with exit 2 listing it.
- A log folder Hydra cannot create (``paths.root_dir`` too long, or read-only): a traceback, before any
  apbench code runs. Here it is one message naming the folder and ``paths.log_dir``, and exit 2.

Hydra has no hook for either, so both wrap Hydra internals (hydra-core 1.3: the config loader's
``_apply_overrides_to_config``, ``BasicSweeper.get_job_batch`` and ``run_and_report``), only inside these context managers;
where an attribute is missing (another Hydra version) that adjustment is skipped and Hydra's own
behaviour stays.
"""
from __future__ import annotations

import difflib
from contextlib import ExitStack, contextmanager

from omegaconf import DictConfig


def _first_missing(parts: list[str], cfg: DictConfig) -> tuple[int, object] | None:
    """(index of the first part of a dotted key that ``cfg`` lacks, the node above it); None if all exist."""
    node = cfg
    for depth, part in enumerate(parts):
        if not isinstance(node, DictConfig) or part not in node:
            return depth, node
        node = node._get_node(part) if depth < len(parts) - 1 else node
    return None


def misspelt_key_message(key: str, input_line: str, cfg: DictConfig) -> str | None:
    """What to say about ``key`` (from the override ``input_line``) that ``cfg`` does not have; None when
    ``cfg`` has the key (the failure is then elsewhere, e.g. inside a dict value)."""
    parts = key.split(".")
    found = _first_missing(parts, cfg)
    if found is None:
        return None
    depth, node = found
    parent, missing = ".".join(parts[:depth]), parts[depth]
    where = parent or "the config's top level"
    if not isinstance(node, DictConfig):
        return f"could not override {key}: {parent} is a value, not a section with keys"
    valid = sorted(str(k) for k in node.keys())
    close = difflib.get_close_matches(missing, valid, 1)
    head = f"could not override {key}: there is no key {missing!r} in {where}"
    if close:
        fixed = ".".join([*parts[:depth], close[0], *parts[depth + 1:]])
        return f"{head}; did you mean {fixed}? e.g. {fixed}{input_line[input_line.find('='):]}"
    return f"{head}; the keys of {where} are: {', '.join(valid)}"


@contextmanager
def suggest_close_keys():
    try:
        from hydra._internal.config_loader_impl import ConfigLoaderImpl
        from hydra.errors import ConfigCompositionException
        from omegaconf.errors import ConfigAttributeError, ConfigKeyError
        original = ConfigLoaderImpl.__dict__["_apply_overrides_to_config"].__func__
    except (ImportError, KeyError, AttributeError):
        yield
        return

    def apply(overrides, cfg):
        for override in overrides:  # one at a time (as Hydra does) to know which one failed
            try:
                original([override], cfg)
            except ConfigCompositionException as e:
                plain = not (override.is_add() or override.is_force_add() or override.is_delete())
                if not plain or not isinstance(e.__cause__, (ConfigAttributeError, ConfigKeyError)):
                    raise
                message = misspelt_key_message(override.key_or_group, override.input_line or "", cfg)
                if message is None:
                    raise
                raise ConfigCompositionException(message) from e.__cause__

    ConfigLoaderImpl._apply_overrides_to_config = staticmethod(apply)
    try:
        yield
    finally:
        ConfigLoaderImpl._apply_overrides_to_config = staticmethod(original)


@contextmanager
def skip_cells_that_do_not_compose(refused: list[tuple[list[str], str]]):
    """Sweep cells whose config does not compose are appended to ``refused`` as (overrides, reason)
    and left out of the batch the launcher gets. Patched on the sweeper instance Hydra creates:
    Hydra's plugin scan re-imports its core plugin modules, so a patch of the class would be lost."""
    try:
        from hydra.core.plugins import Plugins
        original = Plugins.instantiate_sweeper
    except (ImportError, AttributeError):
        yield
        return
    import sys
    import types

    def instantiate_sweeper(self, **kwargs):
        sweeper = original(self, **kwargs)
        batch = getattr(sweeper, "get_job_batch", None)
        if batch is None or type(sweeper).__name__ != "BasicSweeper":
            return sweeper

        def get_job_batch(sw):
            keep = []
            for overrides in batch():
                try:
                    sw.hydra_context.config_loader.load_sweep_config(sw.config, list(overrides))
                    keep.append(overrides)
                except Exception as e:  # noqa: BLE001  (Hydra raises several types; each means "does not compose")
                    reason = str(e).strip().replace("\n", " ")
                    print(f"apbench: invalid configuration: {' '.join(overrides)}: {reason}", file=sys.stderr)
                    refused.append((list(overrides), reason))
            return keep
        sweeper.get_job_batch = types.MethodType(get_job_batch, sweeper)
        return sweeper

    Plugins.instantiate_sweeper = instantiate_sweeper
    try:
        yield
    finally:
        Plugins.instantiate_sweeper = original


@contextmanager
def log_folder_errors(started: list):
    """Hydra creates its log folder (``hydra.run.dir`` / ``hydra.sweep.dir``, under ``paths.log_dir``)
    before the task starts; a path the file system refuses (too long, under a file, read-only) ends there
    in a traceback. Such an ``OSError`` before the task ``started`` becomes one message and exit 2."""
    try:
        import hydra._internal.utils as hydra_utils
        original = hydra_utils.run_and_report
    except (ImportError, AttributeError):
        yield
        return
    import sys

    def run_and_report(func):
        def checked():
            try:
                return func()
            except OSError as e:
                if started:
                    raise
                where = e.filename or "?"
                print(f"apbench: bad input: paths.log_dir: cannot create Hydra's log folder {where} "
                      f"({e.strerror or e}); set paths.log_dir (or paths.root_dir) to a folder you can write "
                      "(an existing, writable folder with a short enough path)", file=sys.stderr)
                raise SystemExit(2) from None
        return original(checked)

    hydra_utils.run_and_report = run_and_report
    try:
        yield
    finally:
        hydra_utils.run_and_report = original


@contextmanager
def guarded(refused: list[tuple[list[str], str]]):
    with ExitStack() as stack:
        stack.enter_context(suggest_close_keys())
        stack.enter_context(skip_cells_that_do_not_compose(refused))
        yield


__all__ = ["guarded", "log_folder_errors", "misspelt_key_message", "suggest_close_keys",
           "skip_cells_that_do_not_compose"]
