"""Class: a teacher opens a room, sets the lesson step the class follows and watches the class board."""
from __future__ import annotations

from dashboard.entry import through_entry
from dashboard.room_page import class_page

through_entry()  # a fresh server's first link may land here without the entry file: rerun through it
class_page()
