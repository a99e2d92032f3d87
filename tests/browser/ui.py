"""What a user does in JupyterLab and formgrader, as Playwright steps (shared by the tests)."""
from __future__ import annotations

# ----------------------------------------------------------------------------- JupyterLab

def open_lab(page, lab) -> None:
    """Open JupyterLab and wait until the application has started."""
    page.goto(lab.page_url("lab"))
    page.wait_for_function("window.jupyterapp !== undefined && "
                           "document.querySelector('#jp-main-dock-panel') !== null")
    page.evaluate("window.jupyterapp.started")
    page.wait_for_selector("#filebrowser .jp-DirListing-content")


def run_command(page, command: str, args: dict | None = None):
    """Run a JupyterLab command (what a menu item or the command palette does)."""
    return page.evaluate("([id, args]) => window.jupyterapp.commands.execute(id, args)"
                         ".then(() => true)", [command, args or {}])


def wait_for_kernel_idle(page, timeout: float = 120_000) -> None:
    """Wait until the current notebook's kernel has started and runs nothing."""
    page.wait_for_function(
        "() => { const w = window.jupyterapp.shell.currentWidget;"
        " const k = w && w.sessionContext && w.sessionContext.session"
        " && w.sessionContext.session.kernel;"
        " return k && k.status === 'idle' && !w.content.widgets.some("
        "   c => c.model.type === 'code' && c.promptNode"
        "        && c.promptNode.textContent.includes('*')); }",
        timeout=timeout, polling=250)
