"""An mkdocs hook: publish the files outside docs/ that the pages link to.

A page links to `../experiments/plots/seed_mlp.png` so that the link works
on GitHub; mkdocs knows only the files under docs/, and would report such a
link as broken. This hook adds the files named in OUTSIDE to the site, under
`repo/`, and mkdocs then rewrites the links to them.
"""

from pathlib import Path

from mkdocs.structure.files import File, InclusionLevel

ROOT = Path(__file__).resolve().parent.parent
OUTSIDE = ["experiments/plots/*.png", "benchmarks/results.md"]


def on_files(files, config):
    docs_dir = Path(config.docs_dir)
    for pattern in OUTSIDE:
        for path in sorted(ROOT.glob(pattern)):
            relative = path.relative_to(ROOT).as_posix()
            dest = "repo/" + relative
            if path.suffix == ".md":
                dest = dest[: -len(".md")] + "/index.html" if config.use_directory_urls else dest[:-3] + ".html"
            files.append(File("../" + relative, src_dir=str(docs_dir), dest_dir=config.site_dir,
                              use_directory_urls=config.use_directory_urls, dest_uri=dest,
                              inclusion=InclusionLevel.INCLUDED))
    return files
