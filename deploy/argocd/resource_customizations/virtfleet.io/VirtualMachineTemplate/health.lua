-- Argo CD health of a virtfleet.io VirtualMachineTemplate (docs/images.md). A template is data
-- its VMs take; its controller says whether every VM that names it can take it. Uses no string
-- or os library, so it runs from argocd-cm as it is.
--   Degraded:    Stalled=True: some VM cannot take it (the VM and the template merged break a
--                rule; the message names the VM and the field).
--   Progressing: no status yet, a generation not yet observed, or Ready not True.
--   Healthy:     Ready=True, saying how many VMs name it.
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
local ready = condition("Ready")
if ready ~= nil and ready.status == "True" then
  return { status = "Healthy", message = said(ready, "Ready") }
end
return { status = "Progressing", message = said(ready, "Waiting for the controller") }
