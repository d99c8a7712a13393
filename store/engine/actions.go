package engine

import (
	"cmp"
	"context"
	"os"
	"os/user"
)

// The record of who stopped, deleted or resumed a run: kept in the store
// with the run (a deletion's record outlives it) and logged.

// localActor is the local operator's name for the record: their login.
func localActor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return cmp.Or(os.Getenv("USER"), "local")
}

// act records that actor (a user's id; empty for the local operator) did
// action to run id, and logs it. Failing to record does not undo what
// was done: it is logged.
func (e *Engine) act(ctx context.Context, id, action, actor string) {
	if actor == "" {
		actor = localActor()
	}
	if err := e.s.RecordAction(ctx, id, action, actor); err != nil {
		e.users.log.Warn("record who acted on a run", "run", id, "action", action, "by", actor, "err", err)
	}
	e.users.log.Info("run "+action, "run", id, "by", actor)
}
