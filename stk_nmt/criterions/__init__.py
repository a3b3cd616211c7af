"""fairseq criteria: an individual token loss + a core aggregate. Imported by stk_nmt/__init__.py."""
