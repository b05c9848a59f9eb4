"""What hypothesis strategies share, typed for mypy."""

from typing import Literal

# Unicode's surrogate category: a lone surrogate cannot be encoded (UTF-8, file names, argv),
# so text strategies leave it out with ``st.characters(blacklist_categories=SURROGATES)``.
SURROGATES: tuple[Literal["Cs"]] = ("Cs",)
