"""Corpus preparation: IWSLT14, WMT17, own files, gettext catalogs, the default corpus."""

from ..extras import require_extra

require_extra("data", "stk_nmt.data")  # before any submodule imports them
