"""Code an instructor should look at: constructs that honest exercise code rarely needs.

This never changes a score and never stops code from running (the sandbox is what makes such code
harmless). It only flags the submission for review, naming the cell, the line and why, so that an
attempt to reach the grader is seen by a person.
"""
from __future__ import annotations

import ast

#: attribute chains (``module.name``) and what using them suggests
ATTRIBUTES = {
    "sys._getframe": "walks the call stack", "sys.settrace": "traces other code", "sys.setprofile": "traces other code",
    "sys.modules": "reaches modules by name", "sys.exit": "ends the process",
    "inspect.stack": "walks the call stack", "inspect.currentframe": "walks the call stack",
    "inspect.getouterframes": "walks the call stack", "inspect.getsourcefile": "looks for source files",
    "gc.get_objects": "searches the process's objects", "gc.get_referrers": "searches the process's objects",
    "gc.get_referents": "searches the process's objects",
    "os.fork": "starts processes", "os.forkpty": "starts processes", "os.system": "runs shell commands",
    "os.popen": "runs shell commands", "os.execv": "replaces the process", "os.execve": "replaces the process",
    "os.kill": "signals processes", "os.killpg": "signals processes", "os._exit": "ends the process",
    "os.write": "writes to file descriptors", "os.dup2": "rewires file descriptors", "os.fdopen": "opens file descriptors",
    "os.setsid": "detaches from its session", "os.listdir": "lists folders", "os.walk": "lists folders",
    "os.scandir": "lists folders", "os.environ": "reads the environment",
    "builtins.__import__": "imports by name", "importlib.import_module": "imports by name",
    "base64.b64decode": "decodes hidden text", "codecs.decode": "decodes hidden text",
    "marshal.loads": "loads code objects", "pickle.loads": "loads pickled objects",
}
#: plain names and what calling or reading them suggests
NAMES = {
    "__import__": "imports by name", "exec": "runs code built at run time", "eval": "runs code built at run time",
    "compile": "compiles code at run time", "globals": "reads a global namespace", "__builtins__": "reaches the builtins",
}
#: attributes that only introspection needs
INTROSPECTION = {"f_back", "f_locals", "f_globals", "tb_frame", "gi_frame", "cr_frame", "__globals__",
                 "__closure__", "__code__", "__subclasses__", "__mro__"}
MODULES = {"ctypes": "calls C functions directly", "subprocess": "runs other programs",
           "multiprocessing": "starts processes", "signal": "handles signals", "socket": "opens network sockets",
           "resource": "changes resource limits", "pty": "opens terminals"}


#: modules whose functions a notebook has no reason to replace
LIBRARIES = {"np", "numpy", "json", "builtins", "sys", "os", "math", "io", "inspect", "importlib", "random"}


def suspicious(source: str, allowed_rnnkit=()) -> list[tuple[int, str, str]]:
    """``(line, what, why)`` for each construct of ``source`` an instructor should look at.
    ``allowed_rnnkit``: what ``rnnkit.<name>`` may be in the assignment's sandbox (modules and the
    names its package re-exports); any other ``rnnkit.<name>`` is flagged."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        what = _flag(node) or _replaces_library(node) or _rnnkit_beyond(node, allowed_rnnkit)
        if what is not None:
            found.append((getattr(node, "lineno", 0), *what))
    return sorted(set(found))


def _replaces_library(node) -> tuple[str, str] | None:
    targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
        node, (ast.AugAssign, ast.AnnAssign)) else []
    for target in targets:
        dotted = _dotted(target) if isinstance(target, ast.Attribute) else None
        if dotted and dotted.split(".")[0] in LIBRARIES:
            return f"{dotted} = ...", "replaces a library function"
    return None


def _rnnkit_beyond(node, allowed) -> tuple[str, str] | None:
    """``rnnkit.x`` (an attribute or an import) where ``rnnkit.x`` is not a module it provides."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "rnnkit":
        name = f"rnnkit.{node.attr}"
    elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rnnkit"):
        names = [f"rnnkit.{a.name}" for a in node.names] if node.module == "rnnkit" else [node.module]
        name = next((n for n in names if not _provided(n, allowed)), None)
    elif isinstance(node, ast.Import):
        name = next((a.name for a in node.names if a.name.startswith("rnnkit.")), None)
    else:
        return None
    if name is None or _provided(name, allowed):
        return None
    return name, "uses a part of rnnkit this assignment does not provide"


def _provided(name: str, allowed) -> bool:
    return any(name == a or name.startswith(a + ".") or a.startswith(name + ".") for a in allowed)


def _flag(node) -> tuple[str, str] | None:
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        for name in names:
            top = name.split(".")[0]
            if top in MODULES:
                return f"import {name}", MODULES[top]
    if isinstance(node, ast.Attribute):
        dotted = _dotted(node)
        if dotted in ATTRIBUTES:
            return dotted, ATTRIBUTES[dotted]
        if node.attr in INTROSPECTION:
            return f".{node.attr}", "inspects frames or function internals"
    if isinstance(node, ast.Name) and node.id in NAMES:
        return node.id, NAMES[node.id]
    if isinstance(node, ast.Call) and _dotted(node.func) in ("getattr", "setattr") and len(node.args) >= 2 \
            and not isinstance(node.args[1], ast.Constant):
        return f"{node.func.id}(..., <computed name>)", "reaches attributes by a name built at run time"
    if isinstance(node, ast.Call) and _dotted(node.func) in ("open", "io.open", "pathlib.Path", "Path"):
        if node.args and isinstance(node.args[0], ast.Constant) and str(node.args[0].value).startswith(("/", "..")):
            return f"open({node.args[0].value!r})", "reads a file outside its own folder"
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith(("/proc", "/opt", "/root")):
        return repr(node.value[:40]), "names a system path"
    return None


def _dotted(node) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None
