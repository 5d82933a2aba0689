"""The sync pass: one dossier, one entity, one direction.

1. read what changed on the source since the cursor (with an overlap window);
2. map to canonical and validate; a bad record becomes an incident, the others go on;
3. resolve against the link table (create, update only what changed and is owned by
   the source side, mark deleted, or refuse);
4. write in batches, idempotently (``extId`` = ``<dossier>:<key>``; a link row is
   written *before* a create so a crash never leads to a second create);
5. commit link rows per batch and advance the cursor only at the end, once every write
   it covers has succeeded.

``run`` runs and journals a pass; ``base`` is what every pass shares; ``to_ssm`` and
``to_sage`` are the two directions and ``children`` a record's children in both;
``meanwhile`` sends the Sage edits made during a long SSM → Sage pass;
``links`` is a link's state (``LinkLabel``, ``Kept``, ``mark``); ``guards`` keeps a pass
from doing harm (mass deletions, a restored Sage database) and owns a dossier's
full-sync flag; ``stop`` is how a pass is asked to stop at a safe point.
"""
