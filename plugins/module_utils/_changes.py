# -*- coding: utf-8 -*-
# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A difference tracker: what was found, what is wanted, per object."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def _text(value):
    if value is None:
        return 'absent'
    if isinstance(value, bool):
        return 'yes' if value else 'no'
    if isinstance(value, (list, tuple)):
        return '[' + ', '.join(str(v) for v in value) + ']'
    return str(value)


class Changes(object):
    """Differences of one object (a router, a segment, a link), and the mutations that remove them.

    Each difference is (field, before, after); `files` holds whole-file differences so
    the diff shows their content. Nothing is changed while the differences are found:
    each mutation is queued (`apply=` of `add`, or `then`) and `commit` runs the queue in
    order, the one place that check mode skips. Desired and actual state are thus
    computed the same way in check and apply mode.
    """

    def __init__(self, owner):
        self.owner = owner
        self.items = []
        self.files = []
        self._queue = []

    def add(self, field, before, after, apply=None):
        """Record a difference; `apply` (no arguments) is the mutation that removes it."""
        self.items.append((field, before, after))
        self.then(apply)

    def add_file(self, path, before, after, apply=None):
        self.files.append((path, before, after))
        self.add('file ' + path, 'absent' if before is None else 'differs', 'written', apply)

    def then(self, apply):
        """Queue a mutation that is no difference of its own (a directory made, a checksum kept)."""
        if apply is not None:
            self._queue.append(apply)

    def apply(self):
        """Run the queued mutations in order (a failing one stops the rest: its exception propagates)."""
        queue, self._queue = self._queue, []
        for mutation in queue:
            mutation()

    def commit(self, check_mode):
        """The check-mode gate: apply the queued mutations unless in check mode, where they are dropped."""
        if check_mode:
            self._queue = []
        else:
            self.apply()

    def __bool__(self):
        return bool(self.items)

    __nonzero__ = __bool__

    @property
    def changed(self):
        return bool(self.items)

    def lines(self):
        return ['%s: %s -> %s' % (field, _text(before), _text(after))
                for field, before, after in self.items]

    def diffs(self):
        """Ansible diff dicts: one for the fields, one per file whose content differs."""
        if not self.items:
            return []
        fields = [(f, b, a) for f, b, a in self.items if not f.startswith('file ')]
        result = []
        if fields:
            result.append({
                'before_header': self.owner,
                'after_header': self.owner,
                'before': ''.join('%s: %s\n' % (f, _text(b)) for f, b, a in fields),
                'after': ''.join('%s: %s\n' % (f, _text(a)) for f, b, a in fields),
            })
        for path, before, after in self.files:
            result.append({
                'before_header': '%s: %s' % (self.owner, path),
                'after_header': '%s: %s' % (self.owner, path),
                'before': before or '',
                'after': after,
            })
        return result

    def result(self):
        return {'changed': self.changed, 'changes': self.lines()}


class Unrecorded(Changes):
    """The "no change" recorder: mutations are queued as usual, differences are not recorded.

    For the details of what one step creates (the attributes of a new link, the sysctls
    and `lo` of a new namespace): they are part of its 'created'. Used inside a mutation,
    after the creation, and applied there.
    """

    def __init__(self):
        Changes.__init__(self, None)

    def add(self, field, before, after, apply=None):
        self.then(apply)

    def add_file(self, path, before, after, apply=None):
        self.then(apply)
