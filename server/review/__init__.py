"""The review page (issue 17): watch a recording with its markers and its proof, in a browser.

Served two ways by the same code (:mod:`server.review.web`):

- by the evidence store, mounted at ``/review`` of ``bodycam server``: the
  recordings it holds, behind a login (:mod:`.auth`), every view and export
  an audit entry (:mod:`.store_catalog`);
- by ``bodycam review STORAGE`` on a laptop holding a camera's storage
  directory (:mod:`.storage_catalog`, :mod:`.serve`): recordings read in
  place, never written, each checked with ``verify_recording`` (the code
  ``bodycam verify`` runs) in the background; loopback only, no login.

What a recording is made of for the page comes from code the camera side
already has, not from a second reading of the manifest: the description and
timeline from :mod:`camera.inspection` (what ``bodycam inspect`` shows), the
verdict from :mod:`camera.evidence.verify`, the MP4 and the clip from
:mod:`camera.export`. The page plays the stored MPEG-TS segments through an
HLS playlist written from the manifest (:mod:`.playlist`) with hls.js,
vendored in ``static/`` (see ``static/VENDORED.md``).
"""
