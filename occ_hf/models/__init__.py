"""Model classes and conversion tools of occ-hf."""
