"""The request's own types, below every other package: what one request is (context,
principal, usage), what each stage found (typed findings), how a request ended (the
decision vocabulary) and how big it is (the one token estimate). Everything imports
these; they import nothing of the appliance but the error tree."""
