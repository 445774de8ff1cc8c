"""Sphinx configuration for augment-learn."""

import augment

project = "augment-learn"
author = "augment-learn developers"
copyright = "2026, augment-learn developers"
release = version = augment.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": True}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# the numpydoc cross-references of type descriptions ("int, default=None")
# would need a target for every word: keep them as plain text
numpydoc_xref_param_type = False

templates_path = ["_templates"]
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py"]

html_theme = "pydata_sphinx_theme"
html_title = "augment-learn"

# no network when building here: intersphinx inventories are not fetched
intersphinx_mapping = {}

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
}
