"""German person and place recognition with a small neural tagger run by ONNX Runtime.

No German spaCy pipeline and no pretrained German encoder is on the package registry, so
the appliance trains its own tagger offline: :mod:`.synth` writes labelled German
sentences (court decisions, letters, e-mails, chat, signature lines) from Faker's German,
Austrian and Swiss names and places, Wiktionary's German place names, surnames and nouns
(:mod:`.wiktionary`) and the Duden word list of ``zufallsworte``; :mod:`.ler` adds real
labelled court decisions (the DEV half of the LER corpus, shipped in ``data/``, CC BY 4.0);
:mod:`.train` fits two small character-CNN + token-CNN taggers on the mix with torch and
exports their average to ONNX; :mod:`.build` caches the result; :mod:`.recognizer` plugs it into
Presidio for ``de``, where it also arbitrates the rule-based gazetteer's findings.
Nothing is downloaded and nothing large is committed.
"""
