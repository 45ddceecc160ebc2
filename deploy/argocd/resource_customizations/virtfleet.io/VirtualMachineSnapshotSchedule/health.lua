-- Argo CD health of a virtfleet.io VirtualMachineSnapshotSchedule, from the kstatus conditions its controller writes
-- (Ready once its newest snapshot is Ready; its newest snapshot Failed is Stalled; docs/snapshots.md). Uses no string or os library, so it runs from argocd-cm as it is.
--   Degraded:    Stalled=True (it needs a person: the condition's message says what to fix).
--   Progressing: no status yet, a generation not yet observed, Reconciling=True, or not Ready yet.
--   Healthy:     Ready=True.
local function condition(conditionType)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == conditionType then
      return c
    end
  end
  return nil
end

local function said(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback
end

if obj.status == nil then
  return { status = "Progressing", message = "Waiting for the controller to report status" }
end
local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  return { status = "Progressing", message = "Waiting for the controller to observe generation " .. tostring(generation) }
end
local stalled = condition("Stalled")
if stalled ~= nil and stalled.status == "True" then
  return { status = "Degraded", message = said(stalled, "Stalled") }
end
local reconciling = condition("Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  return { status = "Progressing", message = said(reconciling, "Reconciling") }
end
local ready = condition("Ready")
if ready ~= nil and ready.status == "True" then
  return { status = "Healthy", message = said(ready, "Ready") }
end
return { status = "Progressing", message = said(ready, "Waiting for the controller") }
