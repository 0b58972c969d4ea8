"""German person and place recognition with a small linear tagger trained on first start.

No German spaCy pipeline and no pretrained German encoder is on the package registry, so
the appliance trains its own tagger offline: :mod:`.synth` writes labelled German text
in the registers users send (mail, HR notes, support tickets, chat, CVs, letters) and in
court German, from Faker's German, Austrian and Swiss names and places, Wiktionary's
German place names, surnames and nouns (:mod:`.wiktionary`) and the Duden word list of
``zufallsworte``; :mod:`.ler` and :mod:`.germeval` add real labelled text (court
decisions, Wikipedia and news; CC BY 4.0, shipped in ``data/``, their held-out parts
not); :mod:`.places` adds GeoNames' towns as a word list; :mod:`.features` hashes each
token's word, affixes, shape, neighbours and word-list flags; :mod:`.train` fits a
multinomial logistic regression on them with NumPy (about 30 seconds on two cores);
:mod:`.build` caches the result; :mod:`.recognizer` plugs it into Presidio for ``de``,
where it also arbitrates the rule-based gazetteer's findings. Nothing is downloaded.
"""
