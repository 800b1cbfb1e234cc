"""Text: decode, normalise with an offset map, winnowing fingerprints, inverted index and
passage alignment (issue 21). ``signals/text.py`` puts it behind the Signal interface."""
