"""The README and docs/ hold: measured tables match bench/results/, links resolve, the README
stays short and names CI's test command, and docs/layout.md lists every module of `tfl/`.

Nothing here imports TensorFlow or tfl: the render script is standard library only.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RENDER = REPO / "docs" / "render_tables.py"
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def render_check(root=REPO):
    return subprocess.run([sys.executable, str(RENDER), "--check", "--root", str(root)],
                          capture_output=True, text=True, timeout=60)


def copy_of_docs(tmp_path):
    """README.md, docs/*.md and bench/results/*.json copied under `tmp_path`."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "bench" / "results").mkdir(parents=True)
    shutil.copy(REPO / "README.md", tmp_path / "README.md")
    for path in (REPO / "docs").glob("*.md"):
        shutil.copy(path, tmp_path / "docs" / path.name)
    for path in (REPO / "bench" / "results").glob("*.json"):
        shutil.copy(path, tmp_path / "bench" / "results" / path.name)
    return tmp_path


def test_measured_tables_match_the_json_results():
    result = render_check()
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_changed_number_in_a_rendered_table_fails_the_check(tmp_path):
    root = copy_of_docs(tmp_path)
    page = root / "docs" / "performance.md"
    text = page.read_text(encoding="utf-8")
    block = re.search(r"<!-- table: training -->\n(.*?)<!-- /table -->", text, re.S)
    assert block, "docs/performance.md has no training table"
    row = next(line for line in block[1].splitlines() if re.search(r"\| \d", line))
    changed = re.sub(r"\| (\d)", lambda m: f"| {(int(m[1]) + 1) % 10}", row, count=1)
    page.write_text(text.replace(row, changed), encoding="utf-8")

    result = render_check(root)
    assert result.returncode == 1, result.stdout
    assert "docs/performance.md: out of date" in result.stdout


def test_a_changed_figure_in_a_sentence_fails_the_check(tmp_path):
    root = copy_of_docs(tmp_path)
    page = root / "docs" / "models.md"
    text = page.read_text(encoding="utf-8")
    marker = re.search(r"(<!-- value: [^>]+ -->)([^<]*)(<!-- /value -->)", text)
    assert marker, "docs/models.md has no value marker"
    page.write_text(text.replace(marker[0], marker[1] + "9.99" + marker[3], 1), encoding="utf-8")

    result = render_check(root)
    assert result.returncode == 1, result.stdout
    assert "docs/models.md: out of date" in result.stdout


def test_a_missing_result_file_is_skipped_with_a_note(tmp_path):
    root = copy_of_docs(tmp_path)
    (root / "bench" / "results" / "generation.json").unlink()

    result = render_check(root)
    assert result.returncode == 0, result.stdout
    assert "note: docs/generation.md: table 'generation' not checked" in result.stdout


def without_code_blocks(text):
    return re.sub(r"```.*?```", "", text, flags=re.S)


def test_relative_links_point_to_existing_files():
    broken = []
    for document in DOCUMENTS:
        text = without_code_blocks(document.read_text(encoding="utf-8"))
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # a web address or an anchor on the same page
            if not (document.parent / target.split("#")[0]).exists():
                broken.append(f"{document.relative_to(REPO)}: {target}")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_readme_is_short():
    lines = len((REPO / "README.md").read_text(encoding="utf-8").splitlines())
    assert lines < 250, f"README.md has {lines} lines; move depth to docs/"


def test_ci_runs_the_readmes_test_command():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    in_readme = [line.strip() for line in readme.splitlines()
                 if line.startswith("python3.11 -m venv") and "pytest" in line]
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    in_ci = [line.strip() for line in ci.splitlines()
             if "pytest" in line and not line.lstrip().startswith("#")]
    assert len(in_readme) == 1, in_readme
    assert in_ci == in_readme


def layout_tree():
    """The files and folders that docs/layout.md's tree lists, relative to the repository."""
    text = (REPO / "docs" / "layout.md").read_text(encoding="utf-8")
    tree = re.search(r"```\n(tfl/\n.*?)```", text, re.S)
    assert tree, "docs/layout.md has no tree starting with tfl/"
    parents, files, folders = {}, set(), set()
    for line in tree[1].splitlines():
        depth = (len(line) - len(line.lstrip())) // 2
        names = []
        for word in line.split():  # a line may list several files; a description follows
            if not re.fullmatch(r"[\w.]+(/|\.py)", word):
                break
            names.append(word)
        for name in names:
            path = parents.get(depth - 1, "") + name
            if name.endswith("/"):
                parents[depth] = path
                folders.add(path)
            else:
                files.add(path)
    return files, folders


def test_the_layout_page_lists_every_module():
    files, folders = layout_tree()
    missing_folders = sorted(f for f in folders if not (REPO / f).is_dir())
    assert not missing_folders, f"docs/layout.md lists missing folders {missing_folders}"
    # A package's folder stands for its __init__.py.
    listed = files | {f + "__init__.py" for f in folders if (REPO / f / "__init__.py").is_file()}
    actual = {path.relative_to(REPO).as_posix() for path in (REPO / "tfl").rglob("*.py")}
    assert not actual - listed, f"docs/layout.md does not list {sorted(actual - listed)}"
    assert not listed - actual, f"docs/layout.md lists missing files {sorted(listed - actual)}"
