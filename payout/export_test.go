package payout

// Step and the Step constants expose the fault-injection points to the
// external tests.
type Step = step

// Steps, in order.
const (
	StepReserved = stepReserved
	StepPaid     = stepPaid
	StepRecorded = stepRecorded
)

// SetHook makes r call h after each step; an error stops the Run there,
// exactly as a crash would.
func SetHook(r *Runner, h func(s Step, payoutID string) error) { r.hook = h }
