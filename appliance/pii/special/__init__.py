"""GDPR Art. 9 special categories of personal data, detected in English and German.

Identifiers (names, e-mail addresses, IBANs) say WHO a text is about; special categories
say WHAT sensitive fact it reveals about them: health, ethnic origin, political opinions,
religious or philosophical beliefs, trade-union membership, genetic and biometric data,
sex life or sexual orientation. Art. 9(1) forbids processing them unless one of the
exceptions of Art. 9(2) applies, so the decision these findings feed is where the text
may go (see ``policies/gdpr.rego``), not which words to replace: their default redaction
action is ``allow`` (:data:`.categories.DEFAULT_ACTION`).

:mod:`.categories` holds the vocabulary, :mod:`.lexicon` the per-language word lists
(``data/<lang>.yaml``, the files a reviewer edits), :mod:`.detector` the matching.
"""
