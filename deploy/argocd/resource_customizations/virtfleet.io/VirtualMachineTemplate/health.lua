-- Argo CD health of a virtfleet.io VirtualMachineTemplate (docs/images.md). A template is data
-- its VMs take: it has nothing to converge, so once the controller has seen its generation it is
-- Healthy; what a VM made of it is that VM's own health. Uses no string or os library, so it runs
-- from argocd-cm as it is.
--   Progressing: no status yet, or a generation not yet observed.
--   Healthy:     otherwise, saying how many VMs name it.
if obj.status == nil then
  return { status = "Progressing", message = "Waiting for the controller to report status" }
end
local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  return { status = "Progressing", message = "Waiting for the controller to observe generation " .. tostring(generation) }
end
local count = obj.status.usedByCount or 0
if count == 1 then
  return { status = "Healthy", message = "used by 1 VirtualMachine" }
end
return { status = "Healthy", message = "used by " .. tostring(count) .. " VirtualMachines" }
